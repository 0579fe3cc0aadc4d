//! From what a person types to a tantivy query: words (all must match), `"phrases"`,
//! `field:value` (`title`, `text`, `author`, `type`, `project`, `tool`), `word*` prefixes,
//! `-word` exclusions, `OR`; then the filters from the form and the viewer's access.

use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur, Query, QueryParser, TermQuery, TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Searcher, Term};

use super::schema::Fields;
use super::{Access, SearchRequest};

/// Splits bare `word*` tokens off the query: tantivy's parser only knows prefixes inside
/// phrases, so these become prefix queries of their own.
fn split_prefixes(q: &str) -> (String, Vec<String>) {
    let mut rest = Vec::new();
    let mut prefixes = Vec::new();
    let mut in_quotes = false;
    for token in q.split_whitespace() {
        let quotes = token.matches('"').count();
        if !in_quotes
            && quotes == 0
            && let Some(stem) = token.strip_suffix('*')
            && !stem.is_empty()
            && stem
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            prefixes.push(stem.to_lowercase());
        } else {
            rest.push(token);
        }
        if quotes % 2 == 1 {
            in_quotes = !in_quotes;
        }
    }
    (rest.join(" "), prefixes)
}

/// Builds the query; `Err` carries a message for the person who typed it.
pub fn build(
    req: &SearchRequest,
    access: &Access,
    fields: &Fields,
    parser: &QueryParser,
    searcher: &Searcher,
) -> Result<Box<dyn Query>, String> {
    let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let (text, prefixes) = split_prefixes(req.q.trim());
    if !text.is_empty() {
        let parsed = parser.parse_query(&text).map_err(|e| describe(&e))?;
        must.push((Occur::Must, parsed));
    }
    for p in prefixes {
        let terms: Vec<Term> = [fields.title, fields.text]
            .into_iter()
            .flat_map(|f| expand_prefix(searcher, f, &p, MAX_EXPANSIONS))
            .collect();
        if terms.is_empty() {
            // No word starts so: nothing can match.
            return Ok(Box::new(EmptyQuery));
        }
        // Constant score: a prefix says "something like this", not which expansion matters.
        must.push((Occur::Must, Box::new(TermSetQuery::new(terms))));
    }
    let filters = [
        (fields.project, req.project.as_deref()),
        (fields.kind, req.kind.as_deref()),
        (fields.tool, req.tool.as_deref()),
    ];
    for (field, value) in filters {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            must.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(field, v),
                    IndexRecordOption::Basic,
                )),
            ));
        }
    }
    if let Access::Tokens(tokens) = access {
        // Part of the query itself, so hidden documents are not counted either.
        let terms = tokens.iter().map(|t| Term::from_field_text(fields.read, t));
        must.push((Occur::Must, Box::new(TermSetQuery::new(terms))));
    }
    if must.is_empty() {
        return Ok(Box::new(AllQuery));
    }
    Ok(Box::new(BooleanQuery::new(must)))
}

/// A prefix matches at most this many words (the most common way to keep `a*` cheap).
const MAX_EXPANSIONS: usize = 50;

/// The indexed words of `field` that start with `prefix`, read from the term dictionaries
/// (cheaper than an automaton over every term).
fn expand_prefix(searcher: &Searcher, field: Field, prefix: &str, limit: usize) -> Vec<Term> {
    let mut found = std::collections::BTreeSet::new();
    for segment in searcher.segment_readers() {
        let Ok(inverted) = segment.inverted_index(field) else {
            continue;
        };
        let Ok(mut stream) = inverted.terms().range().ge(prefix.as_bytes()).into_stream() else {
            continue;
        };
        while stream.advance() && found.len() < limit {
            let key = stream.key();
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            if let Ok(word) = std::str::from_utf8(key) {
                found.insert(word.to_owned());
            }
        }
    }
    found
        .into_iter()
        .map(|w| Term::from_field_text(field, &w))
        .collect()
}

/// A query parser over titles and text, all words required, titles weighing double.
pub fn parser(index: &tantivy::Index, fields: &Fields) -> QueryParser {
    let mut p = QueryParser::for_index(index, vec![fields.title, fields.text]);
    p.set_conjunction_by_default();
    p.set_field_boost(fields.title, 2.0);
    p
}

fn describe(e: &tantivy::query::QueryParserError) -> String {
    use tantivy::query::QueryParserError as E;
    match e {
        E::FieldDoesNotExist(f) => {
            format!("there is no field {f:?}; use title, text, author, type, project or tool")
        }
        E::SyntaxError(s) => {
            format!("the query could not be read ({s}); check quotes and brackets")
        }
        other => format!("the query could not be used: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::split_prefixes;

    #[test]
    fn bare_word_stars_become_prefixes() {
        let (rest, p) = split_prefixes(r#"refac* "big bad wo"* title:x Ab*"#);
        assert_eq!(rest, r#""big bad wo"* title:x"#);
        assert_eq!(p, vec!["refac", "ab"]);
        let (rest, p) = split_prefixes(r#""a b* c" d"#);
        assert_eq!(rest, r#""a b* c" d"#);
        assert!(p.is_empty());
    }
}
