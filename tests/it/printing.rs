//! Issue 11: every type that can hold a token, password or key prints without it. Each is
//! built around a marker secret and formatted with `{:?}` (and `{:#?}`); the marker must
//! not appear. A new secret-holding type belongs in this list.

use rise_registry_broker::api::Outcome;
use rise_registry_broker::audit::{AuditLine, CacheStatus};
use rise_registry_broker::auth::jwks::KeySet;
use rise_registry_broker::aws::ecr::parse_get_authorization_token_response;
use rise_registry_broker::aws::sts::{
    parse_assume_role_response, AssumeRoleWithWebIdentityRequest,
};
use rise_registry_broker::aws::AwsCredentials;
use rise_registry_broker::broker::Issued;
use rise_registry_broker::http::{ApiRequest, ApiResponse};
use rise_registry_broker::oidc::{OidcConfig, TokenIssuer};
use rise_registry_broker::project::{Access, ProjectName};
use rise_registry_broker::registry::{AuthMethod, RegistryCredentials, TokenGrant, UpstreamTrace};
use rise_registry_broker::runtime::{OutboundRequest, OutboundResponse};
use rise_registry_broker::secrets::{MapSecrets, SecretString};

use crate::common::*;

const MARK: &str = "s3cr3t-MARKER-value-0123456789";

fn assert_hidden(name: &str, value: &dyn std::fmt::Debug) {
    for text in [format!("{value:?}"), format!("{value:#?}")] {
        assert!(!text.contains(MARK), "{name} prints its secret: {text}");
    }
}

#[test]
fn secret_holding_types_never_print_their_secret() {
    let secret = SecretString::new(MARK);
    let credentials = RegistryCredentials {
        registry_url: "r".into(),
        username: "AWS".into(),
        password: secret.clone(),
        expires_at_ms: Some(1),
        repository: "x".into(),
        auth_method: AuthMethod::LoginCredentials,
    };
    let response = ApiResponse::json(200, &credentials.to_json(0));
    assert!(
        response.body.contains(MARK),
        "the body itself does carry it"
    );
    let aws = AwsCredentials {
        access_key_id: "AKID".into(),
        secret_access_key: secret.clone(),
        session_token: Some(secret.clone()),
        expires_at_ms: None,
    };
    let sts_xml = format!(
        "<AssumeRoleResponse><AssumeRoleResult><AssumedRoleUser><Arn>a</Arn></AssumedRoleUser>\
         <Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>{MARK}</SecretAccessKey>\
         <SessionToken>{MARK}</SessionToken><Expiration>2026-01-01T00:00:00Z</Expiration>\
         </Credentials></AssumeRoleResult></AssumeRoleResponse>"
    );
    use base64::Engine as _;
    let ecr_json = serde_json::json!({"authorizationData": [{"authorizationToken":
        base64::engine::general_purpose::STANDARD.encode(format!("AWS:{MARK}")), "expiresAt": 1.0}]});
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/oidc/es256_a.pem"
    ))
    .unwrap();
    let pem_body: String = pem.lines().nth(1).unwrap().chars().take(30).collect();
    let secrets = MapSecrets::default().with("KEY", &pem).with("OTHER", MARK);
    let issuer = TokenIssuer::new(
        &OidcConfig {
            issuer: "https://b.test".into(),
            signing_keys: vec!["KEY".into()],
            token_seconds: 300,
        },
        &secrets,
    )
    .unwrap();
    let hs256 = KeySet::from_hs256_secret(
        &base64::engine::general_purpose::STANDARD.encode(format!("{MARK}{MARK}")),
    )
    .unwrap();

    assert_hidden("SecretString", &secret);
    assert_hidden("MapSecrets", &secrets);
    assert_hidden(
        "ApiRequest",
        &ApiRequest {
            authorization: Some(format!("Bearer {MARK}")),
            ..get("/registry/credentials?project=x", None)
        },
    );
    assert_hidden("ApiResponse", &response);
    assert_hidden(
        "Outcome",
        &Outcome {
            response: response.clone(),
            audit: Some(AuditLine {
                cache: Some(CacheStatus::Miss),
                ..AuditLine::default()
            }),
        },
    );
    assert_hidden("RegistryCredentials", &credentials);
    assert_hidden(
        "TokenGrant",
        &TokenGrant {
            body: serde_json::json!({"token": MARK, "access_token": MARK, "expires_in": 300}),
            subject: "caller".into(),
            project: ProjectName::parse("my-app").unwrap(),
            access: Access::Push,
            granted: vec!["repository:rise-apps/my-app:pull,push".into()],
        },
    );
    assert_hidden(
        "Issued",
        &Issued {
            result: Ok(credentials.clone()),
            cache: CacheStatus::Miss,
            shared: false,
            trace: UpstreamTrace::default(),
            refresh_error: None,
        },
    );
    assert_hidden("AwsCredentials", &aws);
    assert_hidden(
        "AssumedRole",
        &parse_assume_role_response(&sts_xml).unwrap(),
    );
    assert_hidden(
        "EcrAuthorization",
        &parse_get_authorization_token_response(ecr_json.to_string().as_bytes()).unwrap(),
    );
    assert_hidden(
        "AssumeRoleWithWebIdentityRequest",
        &AssumeRoleWithWebIdentityRequest {
            role_arn: "r".into(),
            role_session_name: "s".into(),
            web_identity_token: secret.clone(),
            duration_seconds: 900,
            policy: None,
        },
    );
    assert_hidden(
        "OutboundRequest",
        &OutboundRequest {
            headers: vec![("authorization".into(), MARK.into())],
            body: MARK.as_bytes().to_vec(),
            ..OutboundRequest::get("https://x.test")
        },
    );
    assert_hidden(
        "OutboundResponse",
        &OutboundResponse {
            status: 200,
            headers: vec![("x".into(), MARK.into())],
            body: MARK.as_bytes().to_vec(),
        },
    );
    assert_hidden("KeySet (HS256)", &hs256);
    for (name, value) in [
        (
            "SigningKey",
            format!(
                "{:?}",
                rise_registry_broker::crypto::PrivateKey::from_pkcs8_pem(&pem).unwrap()
            ),
        ),
        ("TokenIssuer", format!("{issuer:?}")),
    ] {
        assert!(
            !value.contains(&pem_body) && !value.contains("PRIVATE"),
            "{name}: {value}"
        );
    }
}
