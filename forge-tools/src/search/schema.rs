//! The index's fields. Names are what users type in `field:value` queries.

use tantivy::schema::{
    FAST, FacetOptions, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema,
    TextFieldIndexing, TextOptions,
};

/// Bumped when the schema changes; an index of another version is rebuilt by `forge reindex`.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// Unique per document: `project:<id>`, or the id its tool gives it (`SearchDoc::id`).
    pub key: Field,
    /// `project`, or the type its tool gives it (`SearchDoc::kind`), which users filter on.
    pub kind: Field,
    /// Project short name, and its id for deleting a project's documents at once.
    pub project: Field,
    pub project_id: Field,
    /// Tool mount point, and the instance id.
    pub tool: Field,
    pub tool_id: Field,
    pub title: Field,
    pub text: Field,
    pub author: Field,
    pub date: Field,
    pub url: Field,
    /// Access tokens of everyone who may read the document (see `indexer::read_tokens`).
    pub read: Field,
    /// `/type/<kind>` and `/project/<name>` for facet counts.
    pub facet: Field,
}

pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("en_stem")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        key: b.add_text_field("key", STRING | STORED),
        kind: b.add_text_field("type", STRING | STORED),
        project: b.add_text_field("project", STRING | STORED),
        project_id: b.add_text_field("project_id", STRING),
        tool: b.add_text_field("tool", STRING | STORED),
        tool_id: b.add_text_field("tool_id", STRING),
        title: b.add_text_field("title", text.clone()),
        text: b.add_text_field("text", text.clone()),
        author: b.add_text_field("author", text),
        date: b.add_date_field("date", INDEXED | STORED | FAST),
        url: b.add_text_field("url", STORED),
        read: b.add_text_field("read", STRING),
        facet: b.add_facet_field("facet", FacetOptions::default()),
    };
    (b.build(), fields)
}
