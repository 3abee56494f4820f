//! CORS: which browser origins may call the API.

use reqwest::Method;

use crate::helpers::*;

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let allowed = "http://app.example:3000";
    let app = spawn_app_with(|c| {
        c.cors_origins = todo_api::config::parse_origins(&[
            allowed.to_string(),
            "https://other.example".to_string(),
        ])
        .unwrap();
    })
    .await;
    let preflight = |origin: &str| {
        app.request(Method::OPTIONS, "/api/todos", None)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
    };
    let ok = app.send(preflight(allowed)).await;
    assert!(ok.status.is_success(), "{}", ok.status);
    assert_eq!(ok.header("access-control-allow-origin"), Some(allowed));
    let methods = ok.header("access-control-allow-methods").unwrap_or("");
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let headers = ok.header("access-control-allow-headers").unwrap_or("");
    assert!(headers.contains("authorization"), "{headers}");

    let refused = app.send(preflight("http://evil.example")).await;
    assert_eq!(refused.header("access-control-allow-origin"), None);

    let simple = app
        .send(
            app.request(Method::GET, "/healthz", None)
                .header("origin", allowed),
        )
        .await;
    assert_eq!(simple.header("access-control-allow-origin"), Some(allowed));
    let expose = simple.header("access-control-expose-headers").unwrap_or("");
    assert!(expose.contains("x-total-count"), "{expose}");

    // Off by default: no CORS headers at all.
    let plain = spawn_app().await;
    let reply = plain
        .send(
            plain
                .request(Method::OPTIONS, "/api/todos", None)
                .header("origin", allowed)
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[test]
fn cors_origins_must_be_origins() {
    use todo_api::config::parse_origins;
    let ok = parse_origins(&["https://a.example".into(), " http://[::1]:8080 ".into()]).unwrap();
    assert_eq!(ok.len(), 2);
    for bad in [
        "*",
        "a.example",
        "https://a.example/",
        "ftp://a.example",
        "https://",
    ] {
        assert!(parse_origins(&[bad.to_string()]).is_err(), "{bad}");
    }
}
