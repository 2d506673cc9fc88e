//! `m:Restriction` of FindFolder and FindItem: `t:IsEqualTo`, `t:IsNotEqualTo`,
//! `t:Contains`, `t:Exists`, `t:And`, `t:Or` and `t:Not` over property paths,
//! compared as text. Equality ignores case (as Exchange's store compares strings);
//! other search expressions are ErrorInvalidRestriction.

use roxmltree::Node;

use super::fields::{Prop, parse_path};
use super::xml::{T, child, elements, is};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Restriction {
    Equal(Prop, String),
    NotEqual(Prop, String),
    Contains {
        prop: Prop,
        value: String,
        mode: Mode,
        ignore_case: bool,
    },
    Exists(Prop),
    And(Vec<Restriction>),
    Or(Vec<Restriction>),
    Not(Box<Restriction>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    FullString,
    Prefixed,
    Substring,
}

/// The restriction inside `m:Restriction`; `None` when it uses what is not emulated.
pub(crate) fn parse(restriction: Node<'_, '_>) -> Option<Restriction> {
    expression(elements(restriction).next()?, 0)
}

fn expression(node: Node<'_, '_>, depth: usize) -> Option<Restriction> {
    if depth > 32 || node.tag_name().namespace() != Some(T) {
        return None;
    }
    let path = || elements(node).find_map(parse_path);
    let constant = || {
        child(node, T, "FieldURIOrConstant")
            .and_then(|c| child(c, T, "Constant"))
            .and_then(|c| c.attribute("Value"))
            .map(str::to_owned)
    };
    Some(match node.tag_name().name() {
        "IsEqualTo" => Restriction::Equal(path()?, constant()?),
        "IsNotEqualTo" => Restriction::NotEqual(path()?, constant()?),
        "Exists" => Restriction::Exists(path()?),
        "Contains" => {
            let value = child(node, T, "Constant")?.attribute("Value")?.to_owned();
            let mode = match node.attribute("ContainmentMode").unwrap_or("Substring") {
                "FullString" => Mode::FullString,
                "Prefixed" => Mode::Prefixed,
                _ => Mode::Substring,
            };
            let comparison = node.attribute("ContainmentComparison").unwrap_or("Exact");
            Restriction::Contains {
                prop: path()?,
                value,
                mode,
                ignore_case: comparison.contains("IgnoreCase") || comparison.contains("Loose"),
            }
        }
        "And" | "Or" => {
            let parts = elements(node)
                .map(|c| expression(c, depth + 1))
                .collect::<Option<Vec<_>>>()?;
            if is(node, T, "And") {
                Restriction::And(parts)
            } else {
                Restriction::Or(parts)
            }
        }
        "Not" => Restriction::Not(Box::new(expression(elements(node).next()?, depth + 1)?)),
        _ => return None,
    })
}

/// Whether an object whose property values `get` answers matches.
pub(crate) fn matches(r: &Restriction, get: &dyn Fn(&Prop) -> Vec<String>) -> bool {
    match r {
        Restriction::Equal(p, v) => get(p).iter().any(|x| x.eq_ignore_ascii_case(v)),
        Restriction::NotEqual(p, v) => !get(p).iter().any(|x| x.eq_ignore_ascii_case(v)),
        Restriction::Exists(p) => !get(p).is_empty(),
        Restriction::Contains {
            prop,
            value,
            mode,
            ignore_case,
        } => get(prop).iter().any(|x| {
            let (x, v) = if *ignore_case {
                (x.to_lowercase(), value.to_lowercase())
            } else {
                (x.clone(), value.clone())
            };
            match mode {
                Mode::FullString => x == v,
                Mode::Prefixed => x.starts_with(&v),
                Mode::Substring => x.contains(&v),
            }
        }),
        Restriction::And(parts) => parts.iter().all(|p| matches(p, get)),
        Restriction::Or(parts) => parts.iter().any(|p| matches(p, get)),
        Restriction::Not(inner) => !matches(inner, get),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews_server::xml::wrap_fragment;

    fn check(fragment: &str, subject: &str, expected: Option<bool>) {
        let text = wrap_fragment(&format!("<m:Restriction>{fragment}</m:Restriction>"));
        let doc = roxmltree::Document::parse(&text).expect("xml");
        let r = elements(doc.root_element()).next().and_then(parse);
        let get = |p: &Prop| match p {
            Prop::Field(f) if f == "Subject" => vec![subject.to_owned()],
            Prop::Field(f) if f == "Categories" => vec!["Tracked".to_owned(), "Red".to_owned()],
            _ => Vec::new(),
        };
        assert_eq!(
            r.map(|r| matches(&r, &get)),
            expected,
            "{fragment} on {subject}"
        );
    }

    #[test]
    fn restrictions_match_as_exchange_compares() {
        let eq = |uri: &str, v: &str| {
            format!(
                "<t:IsEqualTo><t:FieldURI FieldURI=\"{uri}\"/><t:FieldURIOrConstant>\
                 <t:Constant Value=\"{v}\"/></t:FieldURIOrConstant></t:IsEqualTo>"
            )
        };
        let cases = [
            (
                eq("item:Subject", "undeliverable"),
                "Undeliverable",
                Some(true),
            ),
            (eq("item:Subject", "Other"), "Undeliverable", Some(false)),
            (eq("item:Categories", "red"), "x", Some(true)),
            (
                format!("<t:Not>{}</t:Not>", eq("item:Subject", "a")),
                "b",
                Some(true),
            ),
            (
                format!(
                    "<t:And>{}{}</t:And>",
                    eq("item:Subject", "a"),
                    eq("item:Categories", "Tracked")
                ),
                "A",
                Some(true),
            ),
            (
                format!(
                    "<t:Or>{}{}</t:Or>",
                    eq("item:Subject", "a"),
                    eq("item:Subject", "b")
                ),
                "c",
                Some(false),
            ),
            (
                "<t:Contains ContainmentMode=\"Prefixed\" ContainmentComparison=\"IgnoreCase\">\
                 <t:FieldURI FieldURI=\"item:Subject\"/><t:Constant Value=\"re:\"/></t:Contains>"
                    .into(),
                "RE: hello",
                Some(true),
            ),
            (
                "<t:Contains ContainmentMode=\"Substring\" ContainmentComparison=\"Exact\">\
                 <t:FieldURI FieldURI=\"item:Subject\"/><t:Constant Value=\"Hello\"/></t:Contains>"
                    .into(),
                "RE: hello",
                Some(false),
            ),
            (
                "<t:Exists><t:FieldURI FieldURI=\"item:Body\"/></t:Exists>".into(),
                "x",
                Some(false),
            ),
            ("<t:IsGreaterThan/>".into(), "x", None),
        ];
        for (fragment, subject, expected) in cases {
            check(&fragment, subject, expected);
        }
    }
}
