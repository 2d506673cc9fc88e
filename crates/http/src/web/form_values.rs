//! Record forms as the API sees them: the posted fields of a form become the JSON
//! body of an API call, and an API record becomes the values a form shows.
//!
//! Each form describes its fields once ([`Field`]): the JSON kind of the value and
//! when the field is shown (`"server_type=imap_smtp,exchange_server;auto_discover=false"`,
//! the syntax of `data-when` in app.js). The same condition hides the field in the
//! browser and keeps it out of the body on the server, so a hidden field is never
//! sent, whatever the browser did.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime};
use serde_json::{Map, Value};

/// A form's values by field name, as text (the last of repeated names wins, so
/// that a checked box overrides the hidden `false` before it).
pub type Values = BTreeMap<String, String>;

/// How a field's text becomes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sent as typed.
    Text,
    /// Trimmed; empty is `null` (clears the value).
    Optional,
    /// `true` when the box was ticked, else `false`.
    Bool,
    /// A whole number; text that is not one is sent as typed, for the API to name.
    Int,
    /// A `datetime-local` value, read as UTC; empty is `null`.
    DateTime,
    /// One of a closed list; empty is not sent.
    Choice,
    /// Write-only: empty keeps the stored secret, `clear_<name>` clears it.
    Secret,
}

/// One field of a form.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    /// When the field is shown (and sent); empty for always.
    pub when: &'static str,
    /// Sent as `null` while hidden, for a value that would contradict what hides it.
    pub cleared_when_hidden: bool,
}

impl Field {
    pub const fn new(name: &'static str, kind: Kind) -> Field {
        Field {
            name,
            kind,
            when: "",
            cleared_when_hidden: false,
        }
    }

    /// Shown only while `condition` holds (see the module's documentation).
    pub const fn when(self, condition: &'static str) -> Field {
        Field {
            when: condition,
            ..self
        }
    }

    pub const fn cleared_when_hidden(self) -> Field {
        Field {
            cleared_when_hidden: true,
            ..self
        }
    }
}

/// The fields of a posted form (`application/x-www-form-urlencoded`), without
/// the CSRF token.
pub fn parse_form(body: &[u8]) -> Values {
    form_urlencoded::parse(body)
        .filter(|(k, _)| k != "_csrf")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Whether `condition` holds for `values`. A condition on a field the form does
/// not have holds, as in app.js.
pub fn holds(condition: &str, values: &Values) -> bool {
    condition
        .split(';')
        .filter(|c| !c.is_empty())
        .all(|c| match c.split_once('=') {
            Some((name, allowed)) => values
                .get(name)
                .is_none_or(|v| allowed.split(',').any(|a| a == v)),
            None => true,
        })
}

/// Which fields are shown, in order: a field hidden by its condition no longer
/// counts for the conditions of the fields after it.
pub fn shown(fields: &[Field], values: &Values) -> BTreeMap<&'static str, bool> {
    let mut effective = values.clone();
    let mut out = BTreeMap::new();
    for f in fields {
        let visible = holds(f.when, &effective);
        if !visible {
            effective.remove(f.name);
        }
        out.insert(f.name, visible);
    }
    out
}

/// The `data-when` condition of each field, for the template.
pub fn conditions(fields: &[Field]) -> BTreeMap<&'static str, &'static str> {
    fields.iter().map(|f| (f.name, f.when)).collect()
}

/// The JSON body for the API: the shown fields that the form has, each of its kind.
pub fn to_json(fields: &[Field], values: &Values) -> Map<String, Value> {
    let visible = shown(fields, values);
    let mut body = Map::new();
    for f in fields {
        if !visible[f.name] {
            if f.cleared_when_hidden {
                body.insert(f.name.to_owned(), Value::Null);
            }
            continue;
        }
        if f.kind == Kind::Secret {
            let clear = values
                .get(&format!("clear_{}", f.name))
                .is_some_and(|v| v == "true");
            match values.get(f.name).filter(|v| !v.is_empty()) {
                Some(v) => {
                    body.insert(f.name.to_owned(), Value::String(v.clone()));
                }
                None if clear => {
                    body.insert(f.name.to_owned(), Value::Null);
                }
                None => {}
            }
            continue;
        }
        let Some(raw) = values.get(f.name) else {
            continue;
        };
        let value = match f.kind {
            Kind::Text => Value::String(raw.clone()),
            Kind::Optional => match raw.trim() {
                "" => Value::Null,
                t => Value::String(t.to_owned()),
            },
            Kind::Bool => Value::Bool(raw == "true"),
            Kind::Int => match raw.trim().parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::String(raw.clone()),
            },
            Kind::DateTime => match raw.trim() {
                "" => Value::Null,
                t => Value::String(local_to_utc(t).unwrap_or_else(|| t.to_owned())),
            },
            Kind::Choice => match raw.as_str() {
                "" => continue,
                c => Value::String(c.to_owned()),
            },
            Kind::Secret => unreachable!("handled above"),
        };
        body.insert(f.name.to_owned(), value);
    }
    body
}

/// A record of the API as form values: text for every field of `fields` it has
/// (booleans `true`/`false`, times as `datetime-local` in UTC, secrets empty).
pub fn from_json(fields: &[Field], record: &Value) -> Values {
    let mut values = Values::new();
    for f in fields {
        let text = match (&record[f.name], f.kind) {
            (_, Kind::Secret) => String::new(),
            (Value::Null, _) => String::new(),
            (Value::String(s), Kind::DateTime) => utc_to_local(s).unwrap_or_else(|| s.clone()),
            (Value::String(s), _) => s.clone(),
            (other, _) => other.to_string(),
        };
        values.insert(f.name.to_owned(), text);
    }
    values
}

/// `2026-11-26T12:40` (a `datetime-local` value, taken as UTC) → RFC 3339.
fn local_to_utc(text: &str) -> Option<String> {
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// RFC 3339 → `2026-11-26T12:40` in UTC, for a `datetime-local` input.
fn utc_to_local(text: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIELDS: &[Field] = &[
        Field::new("name", Kind::Text),
        Field::new("description", Kind::Optional),
        Field::new("kind", Kind::Choice),
        Field::new("auto", Kind::Bool),
        Field::new("location", Kind::Optional).when("auto=false"),
        Field::new("own", Kind::Bool).when("kind=a"),
        Field::new("tenant", Kind::Optional)
            .when("kind=a;own=true")
            .cleared_when_hidden(),
        Field::new("count", Kind::Int),
        Field::new("from", Kind::DateTime),
        Field::new("password", Kind::Secret),
    ];

    fn values(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn posted_forms_keep_the_last_value_and_drop_the_csrf_token() {
        let v = parse_form(b"_csrf=t&auto=false&auto=true&name=A+%26+B&kind=");
        assert_eq!(
            v,
            values(&[("auto", "true"), ("name", "A & B"), ("kind", "")])
        );
    }

    #[test]
    fn conditions_read_like_app_js() {
        let v = values(&[("kind", "b"), ("auto", "false")]);
        for (condition, expected) in [
            ("", true),
            ("kind=b", true),
            ("kind=a,b", true),
            ("kind=a", false),
            ("kind=b;auto=false", true),
            ("kind=b;auto=true", false),
            ("missing=x", true),
        ] {
            assert_eq!(holds(condition, &v), expected, "{condition}");
        }
    }

    #[test]
    fn each_kind_becomes_its_json() {
        let cases: &[(&[(&str, &str)], serde_json::Value)] = &[
            // Empty optional text clears; text is trimmed; booleans and numbers are typed.
            (
                &[
                    ("name", " Lab "),
                    ("description", "  "),
                    ("auto", "true"),
                    ("count", " 12 "),
                ],
                json!({"name": " Lab ", "description": null, "auto": true, "count": 12}),
            ),
            // An unchecked box is false; a number that is not one goes as typed.
            (
                &[
                    ("auto", "false"),
                    ("count", "1.5"),
                    ("location", " imaps://h "),
                ],
                json!({"auto": false, "count": "1.5", "location": "imaps://h"}),
            ),
            // Local date-times are UTC; empty clears; garbage goes as typed.
            (
                &[("from", "2026-03-01T09:30")],
                json!({"from": "2026-03-01T09:30:00Z"}),
            ),
            (
                &[("from", "2026-03-01T09:30:15")],
                json!({"from": "2026-03-01T09:30:15Z"}),
            ),
            (&[("from", "")], json!({"from": null})),
            (&[("from", "soon")], json!({"from": "soon"})),
            // An empty choice is not sent (and hides `own`, so `tenant` is cleared).
            (&[("kind", "")], json!({"tenant": null})),
            // Secrets: empty keeps, a value sets, "clear" clears, a value wins over clear.
            (&[("password", "")], json!({})),
            (&[("password", "s3cret")], json!({"password": "s3cret"})),
            (
                &[("password", ""), ("clear_password", "true")],
                json!({"password": null}),
            ),
            (
                &[("password", "new"), ("clear_password", "true")],
                json!({"password": "new"}),
            ),
            (&[("password", ""), ("clear_password", "false")], json!({})),
        ];
        for (form, expected) in cases {
            let body = Value::Object(to_json(FIELDS, &values(form)));
            assert_eq!(body, *expected, "{form:?}");
        }
    }

    #[test]
    fn hidden_fields_are_not_sent() {
        // auto=true hides location; kind=a shows own, which shows tenant.
        let body = to_json(
            FIELDS,
            &values(&[
                ("auto", "true"),
                ("location", "imaps://h"),
                ("kind", "a"),
                ("own", "true"),
                ("tenant", "t1"),
            ]),
        );
        assert_eq!(
            Value::Object(body),
            json!({"auto": true, "kind": "a", "own": true, "tenant": "t1"})
        );
        // own is hidden by kind=b, so tenant is hidden too even though own=true
        // was posted: the condition chain follows what is shown.
        let v = values(&[("kind", "b"), ("own", "true"), ("tenant", "t1")]);
        let body = to_json(FIELDS, &v);
        assert_eq!(Value::Object(body), json!({"kind": "b", "tenant": null}));
        let s = shown(FIELDS, &v);
        assert!(!s["own"] && !s["tenant"] && s["location"]);
    }

    #[test]
    fn records_become_form_values() {
        let record = json!({
            "name": "Lab", "description": null, "auto": false, "count": 10,
            "from": "2026-03-01T09:30:00Z", "password": "never shown", "kind": "a"
        });
        let v = from_json(FIELDS, &record);
        assert_eq!(v["name"], "Lab");
        assert_eq!(v["description"], "");
        assert_eq!(v["auto"], "false");
        assert_eq!(v["count"], "10");
        assert_eq!(v["from"], "2026-03-01T09:30");
        assert_eq!(v["password"], "");
        // Round trip: the form posts back what the record holds.
        let body = Value::Object(to_json(FIELDS, &v));
        assert_eq!(body["from"], "2026-03-01T09:30:00Z");
        assert_eq!(body["count"], 10);
        assert_eq!(body["auto"], false);
    }
}
