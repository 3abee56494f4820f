//! The web page at `/`: served from the binary with the right types and
//! headers, and kept out of the OpenAPI document.

use reqwest::StatusCode;

use crate::helpers::*;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

const ASSETS: [(&str, &str); 7] = [
    ("/app.js", "text/javascript; charset=utf-8"),
    ("/api.js", "text/javascript; charset=utf-8"),
    ("/dom.js", "text/javascript; charset=utf-8"),
    ("/todos.js", "text/javascript; charset=utf-8"),
    ("/users.js", "text/javascript; charset=utf-8"),
    ("/style.css", "text/css; charset=utf-8"),
    ("/favicon.svg", "image/svg+xml"),
];

#[tokio::test]
async fn the_page_is_served_at_the_root_with_a_strict_content_security_policy() {
    let app = spawn_app().await;
    let reply = app.get("/", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(reply.header("content-security-policy"), Some(CSP));
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert!(
        reply
            .text
            .contains(r#"<script type="module" src="/app.js">"#)
    );
    // Nothing the policy would block: no inline script or style.
    assert!(!reply.text.contains("style="), "inline style in the page");
    assert!(!reply.text.contains("<style"), "inline style in the page");
    assert_eq!(
        reply.text.matches("<script").count(),
        reply.text.matches("<script type=\"module\" src=").count(),
        "inline script in the page"
    );
}

#[tokio::test]
async fn every_asset_has_its_content_type_and_revalidates() {
    let app = spawn_app().await;
    for (path, content_type) in ASSETS {
        let reply = app.get(path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert!(!reply.text.is_empty(), "{path}");

        let etag = reply.header("etag").expect("an ETag").to_string();
        let again = app
            .send(
                app.request(reqwest::Method::GET, path, None)
                    .header("if-none-match", &etag),
            )
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.text.is_empty());
    }
}

#[tokio::test]
async fn every_file_the_page_and_its_modules_load_is_served() {
    let app = spawn_app().await;
    let page = app.get("/", None).await.text;
    let mut sources = vec![page];
    for (path, _) in ASSETS.iter().filter(|(p, _)| p.ends_with(".js")) {
        sources.push(app.get(path, None).await.text);
    }
    for source in sources {
        for attribute in ["src=\"", "href=\"", "from './"] {
            for piece in source.split(attribute).skip(1) {
                let target = piece.split(['"', '\'']).next().unwrap();
                if target.starts_with('#') {
                    continue;
                }
                let path = format!("/{}", target.trim_start_matches('/'));
                assert_eq!(app.get(&path, None).await.status, StatusCode::OK, "{path}");
            }
        }
    }
}

#[tokio::test]
async fn the_page_is_not_part_of_the_api_document() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json", None).await.json();
    let paths = doc["paths"].as_object().unwrap();
    assert!(!paths.contains_key("/"));
    for (path, _) in ASSETS {
        assert!(!paths.contains_key(path), "{path} is documented");
    }
    // Other methods on the page are refused in the API's error shape.
    let reply = app
        .send(app.request(reqwest::Method::POST, "/", None))
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.error(), "Method not allowed");
}
