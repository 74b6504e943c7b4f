//! STS AssumeRole over the Query API: request builder and XML response parsers.

use chrono::DateTime;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::AwsCredentials;
use crate::runtime::{OutboundRequest, DEFAULT_MAX_RESPONSE_BYTES};
use crate::secrets::SecretString;
use crate::upstream::log_safe;

pub const STS_API_VERSION: &str = "2011-06-15";

/// The regional endpoint (STS global endpoint is legacy; regional keeps calls in-region).
pub fn default_endpoint(region: &str) -> String {
    super::regional_endpoint("sts", region)
}

/// One AssumeRole call's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRoleRequest {
    pub role_arn: String,
    pub role_session_name: String,
    pub source_identity: Option<String>,
    pub duration_seconds: u64,
    /// Inline session policy JSON (already size-checked).
    pub policy: Option<String>,
}

impl AssumeRoleRequest {
    /// The unsigned `POST` with a form-encoded body, parameters in a fixed order.
    pub fn to_outbound(&self, endpoint: &str, timeout_ms: u64) -> OutboundRequest {
        let duration = self.duration_seconds.to_string();
        let mut params = vec![
            ("Action", "AssumeRole"),
            ("Version", STS_API_VERSION),
            ("RoleArn", self.role_arn.as_str()),
            ("RoleSessionName", self.role_session_name.as_str()),
            ("DurationSeconds", duration.as_str()),
        ];
        if let Some(policy) = &self.policy {
            params.push(("Policy", policy));
        }
        if let Some(source_identity) = &self.source_identity {
            params.push(("SourceIdentity", source_identity));
        }
        form_post(endpoint, &params, timeout_ms)
    }
}

/// One AssumeRoleWithWebIdentity call's parameters. The call is not signed: the token is
/// the credential (STS API reference, "AssumeRoleWithWebIdentity": "you do not need to
/// use AWS security credentials"). `SourceIdentity` is not a parameter here; AWS takes it
/// from the token's `https://aws.amazon.com/source_identity` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRoleWithWebIdentityRequest {
    pub role_arn: String,
    pub role_session_name: String,
    pub web_identity_token: SecretString,
    pub duration_seconds: u64,
    /// Inline session policy JSON (already size-checked).
    pub policy: Option<String>,
}

impl AssumeRoleWithWebIdentityRequest {
    /// The `POST` with a form-encoded body, parameters in a fixed order.
    pub fn to_outbound(&self, endpoint: &str, timeout_ms: u64) -> OutboundRequest {
        let duration = self.duration_seconds.to_string();
        let mut params = vec![
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", STS_API_VERSION),
            ("RoleArn", self.role_arn.as_str()),
            ("RoleSessionName", self.role_session_name.as_str()),
            ("WebIdentityToken", self.web_identity_token.expose()),
            ("DurationSeconds", duration.as_str()),
        ];
        if let Some(policy) = &self.policy {
            params.push(("Policy", policy));
        }
        form_post(endpoint, &params, timeout_ms)
    }
}

fn form_post(endpoint: &str, params: &[(&str, &str)], timeout_ms: u64) -> OutboundRequest {
    OutboundRequest {
        method: "POST",
        url: endpoint.to_owned(),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        )],
        body: aws_form_encode(params).into_bytes(),
        timeout_ms,
        max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        response_headers: super::RESPONSE_HEADERS,
    }
}

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - _ . ~`) is
/// percent-encoded, as the AWS SDKs and botocore encode Query-API bodies. (The WHATWG
/// form encoding would leave `*` bare and encode `~`; servers that re-encode the parsed
/// form before checking the signature — moto does — would then hash other bytes.)
const AWS_QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `k1=v1&k2=v2` with [`AWS_QUERY_ENCODE`], in the given order.
pub fn aws_form_encode(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, AWS_QUERY_ENCODE),
                utf8_percent_encode(v, AWS_QUERY_ENCODE)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// What a successful AssumeRole returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedRole {
    pub credentials: AwsCredentials,
    pub assumed_role_arn: String,
    pub packed_policy_size: Option<u32>,
    pub request_id: Option<String>,
}

/// Why a response body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

/// Parses `<AssumeRoleResponse>` and `<AssumeRoleWithWebIdentityResponse>` (both carry
/// `Credentials` and `AssumedRoleUser`; entities are unescaped by the XML parser).
pub fn parse_assume_role_response(body: &str) -> Result<AssumedRole, ParseError> {
    let doc = roxmltree::Document::parse(body).map_err(|_| ParseError("not XML"))?;
    let text = |name: &str| -> Option<String> {
        doc.descendants()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .map(|t| t.trim().to_owned())
    };
    let creds = doc
        .descendants()
        .find(|n| n.has_tag_name("Credentials"))
        .ok_or(ParseError("no Credentials"))?;
    let field = |name: &str| -> Result<String, ParseError> {
        creds
            .children()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .ok_or(ParseError("incomplete Credentials"))
    };
    let expiration = field("Expiration")?;
    let expires_at_ms = DateTime::parse_from_rfc3339(&expiration)
        .map_err(|_| ParseError("bad Expiration"))?
        .timestamp_millis();
    let assumed_role_arn = doc
        .descendants()
        .find(|n| n.has_tag_name("AssumedRoleUser"))
        .and_then(|u| u.children().find(|n| n.has_tag_name("Arn")))
        .and_then(|n| n.text())
        .ok_or(ParseError("no AssumedRoleUser"))?
        .trim()
        .to_owned();
    Ok(AssumedRole {
        credentials: AwsCredentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: SecretString::new(field("SecretAccessKey")?),
            session_token: Some(SecretString::new(field("SessionToken")?)),
            expires_at_ms: Some(
                u64::try_from(expires_at_ms).map_err(|_| ParseError("bad Expiration"))?,
            ),
        },
        assumed_role_arn,
        packed_policy_size: text("PackedPolicySize").and_then(|s| s.parse().ok()),
        request_id: text("RequestId").map(|s| log_safe(&s)),
    })
}

/// An AWS Query-API error: code and request id only (the message is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub code: String,
    pub request_id: Option<String>,
}

/// Parses `<ErrorResponse><Error><Code>…` (real STS) and the
/// `<ErrorResponse><Errors><Error><Code>…` shape moto sends.
pub fn parse_error_response(body: &str) -> Option<QueryError> {
    let doc = roxmltree::Document::parse(body).ok()?;
    let error = doc.descendants().find(|n| n.has_tag_name("Error"))?;
    let code = error
        .children()
        .find(|n| n.has_tag_name("Code"))?
        .text()?
        .trim();
    let request_id = doc
        .descendants()
        .find(|n| n.has_tag_name("RequestId") || n.has_tag_name("RequestID"))
        .and_then(|n| n.text())
        .map(log_safe);
    Some(QueryError {
        code: log_safe(code),
        request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_matches_the_aws_sdks() {
        let body = aws_form_encode(&[("Policy", r#"{"Resource":"*"}"#), ("Name", "a~b c@d+e/f")]);
        assert_eq!(
            body,
            "Policy=%7B%22Resource%22%3A%22%2A%22%7D&Name=a~b%20c%40d%2Be%2Ff"
        );
    }

    #[test]
    fn parses_both_error_shapes_and_unescapes_entities() {
        let real = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>m</Message></Error><RequestId>abc-1</RequestId></ErrorResponse>";
        let moto = "<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code></Error></Errors><RequestId>r&amp;2</RequestId></ErrorResponse>";
        assert_eq!(
            parse_error_response(real),
            Some(QueryError {
                code: "AccessDenied".into(),
                request_id: Some("abc-1".into())
            })
        );
        let parsed = parse_error_response(moto).unwrap();
        assert_eq!(parsed.code, "InvalidClientTokenId");
        assert_eq!(
            parsed.request_id.as_deref(),
            Some("r2"),
            "unescaped, then reduced to log-safe characters"
        );
        assert_eq!(parse_error_response("not xml"), None);
    }
}
