//! `openapi.json` is what the API functions' routers say, exactly: regenerate it with
//! `make openapi` after changing a route, a schema or a doc comment on one.

#[test]
fn the_committed_openapi_document_is_the_routers_document() {
    let document = docs::spec::assemble([
        auth::api().split_for_parts().1,
        organizations::api().split_for_parts().1,
        clusters::api().split_for_parts().1,
        deployments::api().split_for_parts().1,
    ]);
    let generated = document.to_pretty_json().expect("the document serializes") + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).expect("openapi.json is writable");
    }
    let committed = std::fs::read_to_string(path).expect("openapi.json exists");
    assert!(
        committed == generated,
        "functions/docs/openapi.json is stale: run `make openapi` and commit it"
    );
}
