//! template.yaml is the single source of truth for routes; the OpenAPI document must agree.

use serde_json::Value;
use shared::testing::{body_json, TestRequest};
use std::collections::BTreeSet;

fn template_routes() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
        .unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut routes = BTreeSet::new();
    for (_, resource) in doc["Resources"].as_mapping().unwrap() {
        let Some(events) = resource
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(|e| e.as_mapping())
        else {
            continue;
        };
        for (_, event) in events {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let path = event["Properties"]["Path"].as_str().unwrap().to_string();
            // A greedy asset route ({proxy+}) serves files, not an API operation; so does the
            // console's function (/ and /console redirect to its page).
            let console =
                resource["Metadata"]["BuildProperties"]["Binary"].as_str() == Some("console");
            if !path.contains("+}") && !console {
                routes.insert((
                    event["Properties"]["Method"]
                        .as_str()
                        .unwrap()
                        .to_lowercase(),
                    path,
                ));
            }
        }
    }
    routes
}

fn spec_routes(spec: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.clone(), path.clone()));
        }
    }
    routes
}

#[tokio::test]
async fn every_template_route_is_documented_and_every_documented_route_exists() {
    let response =
        shared::testing::send(docs::router(), TestRequest::get("/openapi.json").build()).await;
    assert_eq!(response.status(), 200);
    let spec = body_json(&response);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let (template, documented) = (template_routes(), spec_routes(&spec));
    let undocumented: Vec<_> = template.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&template).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the spec: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "spec paths missing from template.yaml: {unrouted:?}"
    );
}

#[tokio::test]
async fn swagger_ui_and_redoc_are_served_without_a_cdn() {
    let index = shared::testing::send(docs::router(), TestRequest::get("/docs/").build()).await;
    assert_eq!(index.status(), 200);
    let html = String::from_utf8(index.body().to_vec()).unwrap();
    assert!(html.to_lowercase().contains("swagger"));
    let redoc = shared::testing::send(docs::router(), TestRequest::get("/redoc").build()).await;
    let html = String::from_utf8(redoc.body().to_vec()).unwrap();
    assert!(html.contains("/redoc/redoc.standalone.js"));
    assert!(!html.contains("cdn."), "ReDoc must not load from a CDN");
    let script = shared::testing::send(
        docs::router(),
        TestRequest::get("/redoc/redoc.standalone.js").build(),
    )
    .await;
    assert_eq!(script.status(), 200);
    assert!(script.body().len() > 100_000);
}

#[tokio::test]
async fn every_file_the_swagger_page_loads_is_served() {
    let index = shared::testing::send(docs::router(), TestRequest::get("/docs/").build()).await;
    let html = String::from_utf8(index.body().to_vec()).unwrap();
    let referenced: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("./"))
        .collect();
    assert!(referenced.len() >= 3, "{html}");
    for file in referenced {
        let path = format!("/docs/{}", &file[2..]);
        let res = shared::testing::send(docs::router(), TestRequest::get(&path).build()).await;
        assert_eq!(res.status(), 200, "{path}");
        let content_type = res.headers()["content-type"].to_str().unwrap();
        let expected = match path.rsplit('.').next().unwrap() {
            "js" => "application/javascript",
            "css" => "text/css",
            "png" => "image/png",
            other => panic!("unexpected asset type {other}"),
        };
        assert_eq!(content_type, expected, "{path}");
    }
    let init = shared::testing::send(
        docs::router(),
        TestRequest::get("/docs/swagger-initializer.js").build(),
    )
    .await;
    let init = String::from_utf8(init.body().to_vec()).unwrap();
    assert!(init.contains("url: \"/openapi.json\""), "{init}");
    let missing = shared::testing::send(
        docs::router(),
        TestRequest::get("/docs/swagger-ui.js.map").build(),
    )
    .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn swagger_authorize_uses_the_login_route() {
    let spec = body_json(
        &shared::testing::send(docs::router(), TestRequest::get("/openapi.json").build()).await,
    );
    let flow = &spec["components"]["securitySchemes"]["bearer"]["flows"]["password"];
    assert_eq!(flow["tokenUrl"], "/api/v1/auth/login");
}
