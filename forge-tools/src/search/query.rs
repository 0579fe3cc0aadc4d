//! From what a person types to a tantivy query: words (all must match), `"phrases"`,
//! `field:value` (`title`, `text`, `author`, `type`, `project`, `tool`), `word*` prefixes,
//! `-word` exclusions, `OR`; then the filters from the form and the viewer's access.

use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur, Query, QueryParser, TermQuery, TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Searcher, Term};

use super::model::{Access, SearchRequest};
use super::schema::Fields;

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

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 1_000;
/// Deepest nesting of brackets (and `NOT`/`-`/`+` chains) accepted: tantivy's query parser
/// recurses once per level.
pub const MAX_DEPTH: usize = 8;

/// Refuses what the query parser must not be given: over-long queries, deep nesting, and a
/// lone `*` (which asks whether a field exists, meaningless for text). `Err` is the message.
pub fn check(q: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut in_quotes = false;
    let mut chain = 0usize;
    for c in q.chars() {
        if c == '"' {
            in_quotes = !in_quotes;
            continue;
        }
        if in_quotes {
            continue;
        }
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        // Prefix operators nest too: `- - -x`, `+-+x`.
        if matches!(c, '-' | '+' | '!') {
            chain += 1;
        } else if !c.is_whitespace() {
            chain = 0;
        }
        deepest = deepest.max(depth).max(chain);
    }
    let nots = q
        .split_whitespace()
        .filter(|w| w.eq_ignore_ascii_case("NOT"))
        .count();
    if deepest > MAX_DEPTH || nots > MAX_DEPTH {
        return Err(format!(
            "query too deeply nested (at most {MAX_DEPTH} levels of brackets or operators)"
        ));
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(format!(
            "the query is too long (at most {MAX_QUERY_CHARS} characters)"
        ));
    }
    let lone_star = q.split_whitespace().any(|w| {
        let value = w.rsplit(':').next().unwrap_or(w);
        value.trim_matches(|c| matches!(c, '(' | ')' | '-' | '+')) == "*"
    });
    if lone_star {
        return Err("a lone * matches nothing: put letters before it, e.g. refac*".into());
    }
    Ok(())
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
    use super::{check, split_prefixes};

    #[test]
    fn deep_long_and_starred_queries_are_refused() {
        assert!(check("rust (async OR tokio) -java title:x*").is_ok());
        assert!(
            check(&"(".repeat(3000))
                .unwrap_err()
                .contains("deeply nested")
        );
        assert!(check(&format!("{}x{}", "(".repeat(9), ")".repeat(9))).is_err());
        assert!(check(&"NOT ".repeat(20)).is_err());
        assert!(check(&"-".repeat(20)).is_err());
        assert!(check(&"a ".repeat(600)).unwrap_err().contains("too long"));
        assert!(check("text:*").unwrap_err().contains("lone *"));
        assert!(check("*").is_err());
        // Inside quotes brackets are words.
        assert!(check(&format!("\"{}\"", "(".repeat(20))).is_ok());
    }

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
