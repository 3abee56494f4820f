//! The OpenAPI description, generated from the handlers' annotations, and
//! the interactive docs that read it.

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr};
use utoipa::{Modify, OpenApi as _};

use crate::error::ErrorBody;

/// The security scheme names the handlers' `security(...)` refer to.
pub const OAUTH2: &str = "oauth2";
pub const BEARER: &str = "bearer";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "todo-api",
        description = "A multi-user Todo API: OAuth2 password login with JWTs, role-, \
                       scope- and attribute-based access."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody)),
    tags(
        (name = "auth", description = "Registration, tokens and sessions"),
        (name = "users", description = "Profiles and user management"),
        (name = "todos", description = "Todos and department sharing"),
        (name = "operations", description = "Health")
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scopes = Scopes::from_iter([
            ("read", "Read your todos"),
            ("write", "Create, change and delete your todos"),
        ]);
        components.add_security_scheme(
            OAUTH2,
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                "/auth/token",
                scopes,
            ))])),
        );
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The base document that the routers' paths are added to.
pub fn base() -> OpenApi {
    ApiDoc::openapi()
}

/// Adds the error answers that every operation of a kind can give, so that
/// each handler documents only its own: 401/403 where a token is needed,
/// 400/413/415 where a body is read, 404 where an id is in the path, and
/// 422 and 503 everywhere.
pub fn document_common_errors(openapi: &mut OpenApi) {
    for (path, item) in openapi.paths.paths.iter_mut() {
        let has_id = path.contains('{');
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            add_common_errors(operation, has_id);
            optional_body_is_never_null(operation);
        }
    }
}

fn add_common_errors(operation: &mut Operation, has_id: bool) {
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let has_body = operation.request_body.is_some();
    let mut statuses = vec![("422", "Invalid input"), ("503", "Service unavailable")];
    if secured {
        statuses.push(("401", "Missing, invalid or revoked token"));
        statuses.push(("403", "Not authorized"));
    }
    if has_body {
        statuses.push(("400", "Malformed body"));
        statuses.push(("413", "Body larger than 64 KiB"));
        statuses.push(("415", "Wrong Content-Type"));
    }
    if has_id {
        statuses.push(("404", "Not found, or not yours"));
    }
    for (status, description) in statuses {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(error_response(description)));
    }
}

/// utoipa documents an optional body (`Option<T>`) as "a T or `null`";
/// the server takes a T or no body at all, never a `null` (a body is an
/// object), so the `null` alternative goes.
fn optional_body_is_never_null(operation: &mut Operation) {
    let Some(RefOr::T(body)) = operation.request_body.as_mut() else {
        return;
    };
    for content in body.content.values_mut() {
        let RefOr::T(content) = content else {
            continue;
        };
        let Some(RefOr::T(Schema::OneOf(one_of))) = &mut content.schema else {
            continue;
        };
        one_of.items.retain(|item| !is_null(item));
        if let [only] = one_of.items.as_slice() {
            content.schema = Some(only.clone());
        }
    }
}

fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(object))
        if object.schema_type == SchemaType::Type(Type::Null))
}

/// A response whose body is the contract's `{"error": …}`.
pub fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}
