//! The route table (docs/api.md, "Routes"): which requests are counted, free, refused or
//! unknown, with each route's metrics template and error dialect, in one table.

use super::errors::Dialect;
use crate::dialect::Api;

/// What the gateway does with a request, decided from its method and path alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`: answered by the gateway, no key.
    Health,
    /// `GET /`, `HEAD /`: `Ollama is running`, as Ollama answers it (its own client and many
    /// tools check a server that way), no key.
    Root,
    /// Counts toward quotas; the body names the model.
    Counted(Api),
    /// Needs a key, never counted.
    Free(FreeRoute),
    /// An Ollama administration route: 403.
    Refused,
    /// 404.
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeRoute {
    /// `GET /api/tags`: filtered by the key's models.
    Tags,
    /// `GET /v1/models`: filtered by the key's models.
    Models,
    /// `GET /v1/models/{model}`: the model is in the path.
    Model,
    /// `POST /api/show`: the model is in the body.
    Show,
    /// `GET /api/version`, `/api/versions`, `/api/status`: passed through.
    Plain,
    /// `GET /api/ps`: the models in memory, only those the key may use, merged over the
    /// healthy hosts.
    Running,
    /// `GET /api/quota`, `GET /v1/quota`: the key's own budget, answered by the gateway.
    Quota,
}

/// What the gateway knows of a request from its method and path: what to do with it, the
/// bounded label of its metrics, and the shape of the gateway's own errors on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classified {
    pub route: Route,
    /// The route template, never the raw path (metrics labels stay bounded).
    pub template: &'static str,
    pub dialect: Dialect,
}

/// How a row matches a path.
#[derive(Clone, Copy)]
enum Path {
    Exact(&'static str),
    /// A path under this prefix with something after it.
    Under(&'static str),
}

/// The methods a row takes; another method on its path is unknown (404), as Ollama's clients
/// never send one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Methods {
    /// `GET` and `HEAD`.
    Read,
    /// `GET` only.
    Get,
    Post,
    Any,
}

impl Methods {
    fn take(self, method: &str) -> bool {
        match self {
            Methods::Read => method == "GET" || method == "HEAD",
            Methods::Get => method == "GET",
            Methods::Post => method == "POST",
            Methods::Any => true,
        }
    }
}

struct Row(Path, Methods, Route, &'static str, Dialect);

use Dialect::{Anthropic, Ollama, OpenAi};
use Methods::{Any, Get, Post, Read};
use Path::{Exact, Under};

/// Every route the gateway knows, one row each (docs/api.md, "Routes"): path, methods, what
/// the gateway does, the metrics template, the dialect of its own errors.
#[rustfmt::skip]
const ROUTES: &[Row] = &[
    Row(Exact("/healthz"), Read, Route::Health, "/healthz", Ollama),
    Row(Exact("/"), Read, Route::Root, "/", Ollama),
    Row(Exact("/api/generate"), Post, Route::Counted(Api::Generate), "/api/generate", Ollama),
    Row(Exact("/api/chat"), Post, Route::Counted(Api::Chat), "/api/chat", Ollama),
    Row(Exact("/api/embed"), Post, Route::Counted(Api::Embed), "/api/embed", Ollama),
    Row(Exact("/api/embeddings"), Post, Route::Counted(Api::EmbeddingsLegacy), "/api/embeddings", Ollama),
    Row(Exact("/v1/chat/completions"), Post, Route::Counted(Api::OpenAiChat), "/v1/chat/completions", OpenAi),
    Row(Exact("/v1/completions"), Post, Route::Counted(Api::OpenAiCompletions), "/v1/completions", OpenAi),
    Row(Exact("/v1/embeddings"), Post, Route::Counted(Api::OpenAiEmbeddings), "/v1/embeddings", OpenAi),
    Row(Exact("/v1/responses"), Post, Route::Counted(Api::Responses), "/v1/responses", OpenAi),
    Row(Exact("/v1/messages"), Post, Route::Counted(Api::Messages), "/v1/messages", Anthropic),
    Row(Exact("/v1/audio/transcriptions"), Post, Route::Counted(Api::Transcriptions), "/v1/audio/transcriptions", OpenAi),
    Row(Exact("/api/tags"), Read, Route::Free(FreeRoute::Tags), "/api/tags", Ollama),
    Row(Exact("/api/version"), Read, Route::Free(FreeRoute::Plain), "/api/version", Ollama),
    Row(Exact("/api/versions"), Read, Route::Free(FreeRoute::Plain), "/api/version", Ollama),
    Row(Exact("/api/status"), Read, Route::Free(FreeRoute::Plain), "/api/status", Ollama),
    Row(Exact("/api/ps"), Read, Route::Free(FreeRoute::Running), "/api/ps", Ollama),
    Row(Exact("/api/show"), Post, Route::Free(FreeRoute::Show), "/api/show", Ollama),
    Row(Exact("/api/quota"), Read, Route::Free(FreeRoute::Quota), "/api/quota", Ollama),
    Row(Exact("/v1/quota"), Read, Route::Free(FreeRoute::Quota), "/v1/quota", OpenAi),
    Row(Exact("/v1/models"), Get, Route::Free(FreeRoute::Models), "/v1/models", OpenAi),
    Row(Under("/v1/models/"), Get, Route::Free(FreeRoute::Model), "/v1/models/{model}", OpenAi),
    Row(Exact("/api/pull"), Any, Route::Refused, "refused", Ollama),
    Row(Exact("/api/push"), Any, Route::Refused, "refused", Ollama),
    Row(Exact("/api/create"), Any, Route::Refused, "refused", Ollama),
    Row(Exact("/api/copy"), Any, Route::Refused, "refused", Ollama),
    Row(Exact("/api/delete"), Any, Route::Refused, "refused", Ollama),
    Row(Exact("/api/me"), Any, Route::Refused, "refused", Ollama),
    Row(Exact("/api/signout"), Any, Route::Refused, "refused", Ollama),
    Row(Under("/api/blobs/"), Any, Route::Refused, "refused", Ollama),
    Row(Under("/api/user/"), Any, Route::Refused, "refused", Ollama),
    Row(Under("/api/experimental/"), Any, Route::Refused, "refused", Ollama),
];

/// Classifies a request. `path` is without the query string; a trailing `/` is ignored.
pub fn classify(method: &str, path: &str) -> Classified {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let row = ROUTES.iter().find(|Row(p, ..)| match p {
        Exact(exact) => path == *exact,
        Under(prefix) => path.len() > prefix.len() && path.starts_with(prefix),
    });
    match row {
        Some(Row(_, methods, route, template, dialect)) if methods.take(method) => Classified {
            route: *route,
            template,
            dialect: *dialect,
        },
        // A known path with another method, or no route: 404 in the dialect its clients
        // speak.
        _ => Classified {
            route: Route::Unknown,
            template: "unknown",
            dialect: if path == "/v1/messages" || path.starts_with("/v1/messages/") {
                Anthropic
            } else if path == "/v1" || path.starts_with("/v1/") {
                OpenAi
            } else {
                Ollama
            },
        },
    }
}

/// The `{model}` of `/v1/models/{model}` (model names may contain `/`, e.g. `library/llama3`).
pub fn model_in_path(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/models/").filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_of(method: &str, path: &str) -> Route {
        classify(method, path).route
    }

    /// Every documented route lands in its class.
    #[test]
    fn table() {
        assert_eq!(route_of("GET", "/healthz"), Route::Health);
        assert_eq!(route_of("POST", "/api/chat"), Route::Counted(Api::Chat));
        assert_eq!(
            route_of("POST", "/api/generate"),
            Route::Counted(Api::Generate)
        );
        assert_eq!(route_of("POST", "/api/embed"), Route::Counted(Api::Embed));
        assert_eq!(
            route_of("POST", "/api/embeddings"),
            Route::Counted(Api::EmbeddingsLegacy)
        );
        assert_eq!(
            route_of("POST", "/v1/chat/completions"),
            Route::Counted(Api::OpenAiChat)
        );
        assert_eq!(
            route_of("POST", "/v1/completions"),
            Route::Counted(Api::OpenAiCompletions)
        );
        assert_eq!(
            route_of("POST", "/v1/embeddings"),
            Route::Counted(Api::OpenAiEmbeddings)
        );
        assert_eq!(
            route_of("POST", "/v1/responses"),
            Route::Counted(Api::Responses)
        );
        assert_eq!(
            route_of("POST", "/v1/messages"),
            Route::Counted(Api::Messages)
        );
        assert_eq!(
            route_of("POST", "/v1/audio/transcriptions"),
            Route::Counted(Api::Transcriptions)
        );
        assert_eq!(route_of("GET", "/api/tags"), Route::Free(FreeRoute::Tags));
        assert_eq!(
            route_of("GET", "/api/version"),
            Route::Free(FreeRoute::Plain)
        );
        assert_eq!(
            route_of("GET", "/api/versions"),
            Route::Free(FreeRoute::Plain)
        );
        assert_eq!(
            route_of("GET", "/api/status"),
            Route::Free(FreeRoute::Plain)
        );
        assert_eq!(route_of("GET", "/api/ps"), Route::Free(FreeRoute::Running));
        assert_eq!(route_of("HEAD", "/"), Route::Root);
        assert_eq!(route_of("POST", "/api/show"), Route::Free(FreeRoute::Show));
        assert_eq!(route_of("GET", "/api/quota"), Route::Free(FreeRoute::Quota));
        assert_eq!(route_of("GET", "/v1/quota"), Route::Free(FreeRoute::Quota));
        assert_eq!(route_of("POST", "/v1/quota"), Route::Unknown);
        assert_eq!(
            route_of("GET", "/v1/models"),
            Route::Free(FreeRoute::Models)
        );
        assert_eq!(
            route_of("GET", "/v1/models/llama3:8b"),
            Route::Free(FreeRoute::Model)
        );
        for refused in [
            "/api/pull",
            "/api/push",
            "/api/create",
            "/api/copy",
            "/api/delete",
            "/api/blobs/sha256:1",
            "/api/me",
            "/api/signout",
            "/api/user/keys/x",
            "/api/experimental/web_search",
        ] {
            assert_eq!(route_of("POST", refused), Route::Refused, "{refused}");
        }
        assert_eq!(route_of("DELETE", "/api/delete"), Route::Refused);
        assert_eq!(route_of("GET", "/api/chat"), Route::Unknown);
        assert_eq!(route_of("GET", "/"), Route::Root);
        assert_eq!(route_of("POST", "/"), Route::Unknown);
        assert_eq!(route_of("GET", "/v2/anything"), Route::Unknown);
        assert_eq!(route_of("POST", "/api/chat/"), Route::Counted(Api::Chat));
    }

    /// Templates and dialects come from the same row; unknown paths get their clients'
    /// dialect.
    #[test]
    fn templates_and_dialects() {
        let c = classify("GET", "/v1/models/library/llama3:8b");
        assert_eq!(
            (c.template, c.dialect),
            ("/v1/models/{model}", Dialect::OpenAi)
        );
        let c = classify("GET", "/api/versions");
        assert_eq!((c.template, c.dialect), ("/api/version", Dialect::Ollama));
        let c = classify("POST", "/v1/messages/");
        assert_eq!(
            (c.template, c.dialect),
            ("/v1/messages", Dialect::Anthropic)
        );
        let c = classify("GET", "/v1/messages");
        assert_eq!(
            (c.route, c.template, c.dialect),
            (Route::Unknown, "unknown", Dialect::Anthropic)
        );
        assert_eq!(classify("GET", "/v1/nope").dialect, Dialect::OpenAi);
        assert_eq!(classify("DELETE", "/api/delete").template, "refused");
        assert_eq!(
            classify("GET", "/v1/models/").route,
            Route::Free(FreeRoute::Models)
        );
    }
}
