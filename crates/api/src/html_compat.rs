//! The HTML compatibility report of a captured message: which elements and CSS features its
//! HTML uses that major mail clients do not (or only partly) support.
//!
//! The table is `crates/api/data/email-client-support.json`, versioned (`version`), with its
//! `source` and `licence`: Sluice's own compact summary written from public knowledge, not
//! a copy of any data set; caniemail.com is where to read more (per client version). To
//! change a verdict, edit the file and bump `version`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::html_scan::HtmlUsage;

const TABLE_JSON: &str = include_str!("../data/email-client-support.json");

/// The support table.
#[derive(Debug, Deserialize)]
pub struct SupportTable {
    pub version: String,
    pub source: String,
    pub licence: String,
    /// Client key to display name.
    pub clients: BTreeMap<String, String>,
    pub features: Vec<Feature>,
}

#[derive(Debug, Deserialize)]
pub struct Feature {
    pub name: String,
    /// `element` or `css`.
    pub kind: String,
    #[serde(rename = "match")]
    pub matcher: Matcher,
    pub unsupported_in: Vec<String>,
    pub partial_in: Vec<String>,
}

/// What counts as a use of a feature. Each field set adds its own uses.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// A start tag name.
    pub element: Option<String>,
    /// Declarations of these properties (all of them, or only those with a value token in
    /// `values`, or only those whose value calls `function`).
    #[serde(default)]
    pub properties: Vec<String>,
    #[serde(default)]
    pub values: Vec<String>,
    /// A CSS function (`var`, `calc`) in a value.
    pub function: Option<String>,
    /// Declarations of properties starting with this (`--`: custom properties).
    pub property_prefix: Option<String>,
    pub at_rule: Option<String>,
    #[serde(default)]
    pub pseudos: Vec<String>,
}

/// The table shipped with this build; checked by a unit test.
pub static TABLE: LazyLock<SupportTable> = LazyLock::new(|| {
    serde_json::from_str(TABLE_JSON).expect("crates/api/data/email-client-support.json is valid")
});

/// One feature the HTML uses.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FeatureUse {
    pub name: String,
    /// `element` or `css`.
    pub kind: String,
    /// How many times it is used.
    pub count: usize,
    /// Client keys (`gmail`, `outlook_windows`, ...) that do not support it.
    pub unsupported_in: Vec<String>,
    /// Client keys that support it only in part.
    pub partial_in: Vec<String>,
}

/// The features used and the score: the share (0 to 100) of the table's clients that
/// support every feature used at least in part.
pub fn report(table: &SupportTable, usage: &HtmlUsage) -> (Vec<FeatureUse>, u8) {
    let features: Vec<FeatureUse> = table
        .features
        .iter()
        .filter_map(|feature| {
            let count = uses(&feature.matcher, usage);
            (count > 0).then(|| FeatureUse {
                name: feature.name.clone(),
                kind: feature.kind.clone(),
                count,
                unsupported_in: feature.unsupported_in.clone(),
                partial_in: feature.partial_in.clone(),
            })
        })
        .collect();
    let clients = table.clients.len().max(1);
    let fine = table
        .clients
        .keys()
        .filter(|client| {
            !features
                .iter()
                .any(|feature| feature.unsupported_in.contains(client))
        })
        .count();
    (features, (fine * 100 / clients) as u8)
}

fn uses(matcher: &Matcher, usage: &HtmlUsage) -> usize {
    let mut count = 0;
    if let Some(element) = &matcher.element {
        count += usage.elements.iter().filter(|e| *e == element).count();
    }
    if let Some(at_rule) = &matcher.at_rule {
        count += usage.at_rules.iter().filter(|a| *a == at_rule).count();
    }
    count += usage
        .pseudos
        .iter()
        .filter(|p| matcher.pseudos.contains(p))
        .count();
    count += usage
        .declarations
        .iter()
        .filter(|(property, value)| declaration_matches(matcher, property, value))
        .count();
    count
}

fn declaration_matches(matcher: &Matcher, property: &str, value: &str) -> bool {
    let calls = |function: &str| value.contains(&format!("{function}("));
    if let Some(prefix) = &matcher.property_prefix
        && property.starts_with(prefix.as_str())
    {
        return true;
    }
    if matcher.properties.is_empty() {
        return matcher.function.as_deref().is_some_and(calls);
    }
    if !matcher.properties.iter().any(|p| p == property) {
        return false;
    }
    if !matcher.values.is_empty() {
        return value
            .split(|c: char| c.is_whitespace() || c == ',')
            .any(|token| matcher.values.iter().any(|v| v == token));
    }
    matcher.function.as_deref().is_none_or(calls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html_scan::scan_html;

    fn used(html: &str) -> (Vec<FeatureUse>, u8) {
        report(&TABLE, &scan_html(html))
    }

    fn names(features: &[FeatureUse]) -> Vec<&str> {
        features.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn the_table_is_consistent() {
        assert!(!TABLE.version.is_empty() && TABLE.source.contains("caniemail.com"));
        assert!(!TABLE.licence.is_empty());
        assert_eq!(TABLE.clients.len(), 8);
        assert!(TABLE.features.len() >= 30);
        for feature in &TABLE.features {
            assert!(
                matches!(feature.kind.as_str(), "element" | "css"),
                "{}",
                feature.name
            );
            for client in feature.unsupported_in.iter().chain(&feature.partial_in) {
                assert!(
                    TABLE.clients.contains_key(client),
                    "{}: {client}",
                    feature.name
                );
            }
            let m = &feature.matcher;
            assert!(
                m.element.is_some()
                    || m.at_rule.is_some()
                    || !m.pseudos.is_empty()
                    || !m.properties.is_empty()
                    || m.function.is_some()
                    || m.property_prefix.is_some(),
                "{} matches nothing",
                feature.name
            );
        }
    }

    #[test]
    fn plain_html_scores_100() {
        let (features, score) =
            used("<table><tr><td style=\"color:#333;padding:4px\">Hi</td></tr></table>");
        assert!(features.is_empty(), "{features:?}");
        assert_eq!(score, 100);
    }

    #[test]
    fn flex_form_and_style() {
        let (features, score) = used(
            "<html><head><style>.row{display:flex} .a:hover{color:red}</style></head><body>\
             <div style=\"display: inline-flex\"><form action=\"https://x.test\"><input name=q>\
             </form></div></body></html>",
        );
        assert_eq!(
            names(&features),
            vec![
                "<style> element",
                "<form>",
                "<input>",
                "display:flex",
                ":hover"
            ]
        );
        let flex = &features[3];
        assert_eq!((flex.kind.as_str(), flex.count), ("css", 2));
        assert_eq!(flex.unsupported_in, vec!["outlook_windows"]);
        // gmail, outlook_windows and outlook_com fail (form); 5 of 8 clients remain.
        assert_eq!(score, 62);
    }

    #[test]
    fn values_functions_and_prefixes() {
        let (features, _) = used(
            "<p style=\"display:block; --brand:#f00; color:var(--brand); width:calc(100% - 2px);\
             background:#fff url(x.png); background-color:#fff; Position:absolute\">x</p>",
        );
        assert_eq!(
            names(&features),
            vec![
                "position",
                "background with url()",
                "CSS variables",
                "calc()"
            ]
        );
        assert_eq!(features[2].count, 2);
    }

    #[test]
    fn script_is_unsupported_everywhere() {
        let (features, score) = used("<script>alert(1)</script>");
        assert_eq!(names(&features), vec!["<script>"]);
        assert_eq!(score, 0);
    }
}
