//! `application/x-www-form-urlencoded` bodies: what the layer reads of them.

use std::borrow::Cow;

use http::{HeaderMap, header};

use crate::reply::rejection::RejectReason;

/// True for an `application/x-www-form-urlencoded` request (parameters such as `charset`
/// allowed).
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// A form body, parsed once (by `form_urlencoded`, as `serde_urlencoded` and axum's `Form`
/// parse it).
pub(crate) struct Form<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Form<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Self {
        Form {
            pairs: form_urlencoded::parse(bytes).collect(),
        }
    }

    /// The value of the field `name`: `None` when absent or empty (an empty field is no
    /// value, as an empty cookie is none), refused when the field appears more than once
    /// (RFC 6749 section 3.2: parameters must not be included more than once; and the app
    /// might read another occurrence than the layer did).
    pub(crate) fn single(&self, name: &str) -> Result<Option<&str>, RejectReason> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_ref());
        let first = values.next();
        if values.next().is_some() {
            return Err(RejectReason::DuplicateParameter);
        }
        Ok(first.filter(|value| !value.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_percent_and_plus_decoded() {
        let form = Form::parse(b"grant_type=refresh_token&client_id=my+app%2F1&empty=");
        assert_eq!(form.single("grant_type"), Ok(Some("refresh_token")));
        assert_eq!(form.single("client_id"), Ok(Some("my app/1")));
        assert_eq!(form.single("empty"), Ok(None));
        assert_eq!(form.single("absent"), Ok(None));
    }

    #[test]
    fn a_repeated_field_is_refused_even_when_one_is_empty() {
        let form = Form::parse(b"refresh_token=a&refresh_token=");
        assert_eq!(
            form.single("refresh_token"),
            Err(RejectReason::DuplicateParameter)
        );
        let encoded_name = Form::parse(b"refresh%5Ftoken=a&refresh_token=b");
        assert_eq!(
            encoded_name.single("refresh_token"),
            Err(RejectReason::DuplicateParameter)
        );
    }

    #[test]
    fn content_type_parameters_are_allowed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8"
                .parse()
                .unwrap(),
        );
        assert!(is_form(&headers));
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(!is_form(&headers));
    }
}
