//! The route table (docs/api.md, "Routes"): which requests are counted, free, refused or unknown.

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

impl Route {
    /// A bounded label for metrics: the route template, never the raw path.
    pub fn template(self, path: &str) -> &'static str {
        match self {
            Route::Health => "/healthz",
            Route::Root => "/",
            Route::Counted(api) => match api {
                Api::Generate => "/api/generate",
                Api::Chat => "/api/chat",
                Api::Embed => "/api/embed",
                Api::EmbeddingsLegacy => "/api/embeddings",
                Api::OpenAiChat => "/v1/chat/completions",
                Api::OpenAiCompletions => "/v1/completions",
                Api::OpenAiEmbeddings => "/v1/embeddings",
                Api::Responses => "/v1/responses",
                Api::Messages => "/v1/messages",
                Api::Transcriptions => "/v1/audio/transcriptions",
            },
            Route::Free(FreeRoute::Tags) => "/api/tags",
            Route::Free(FreeRoute::Models) => "/v1/models",
            Route::Free(FreeRoute::Model) => "/v1/models/{model}",
            Route::Free(FreeRoute::Show) => "/api/show",
            Route::Free(FreeRoute::Quota) => match path {
                "/v1/quota" => "/v1/quota",
                _ => "/api/quota",
            },
            Route::Free(FreeRoute::Running) => "/api/ps",
            Route::Free(FreeRoute::Plain) => match path {
                "/api/status" => "/api/status",
                _ => "/api/version",
            },
            Route::Refused => "refused",
            Route::Unknown => "unknown",
        }
    }
}

/// Classifies a request. `path` is without the query string. A known path with the wrong
/// method is unknown (404), as Ollama's clients never send one.
pub fn classify(method: &str, path: &str) -> Route {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let counted = |api| {
        if method == "POST" {
            Route::Counted(api)
        } else {
            Route::Unknown
        }
    };
    match path {
        "/healthz" if method == "GET" || method == "HEAD" => Route::Health,
        "/" if method == "GET" || method == "HEAD" => Route::Root,
        "/api/generate" => counted(Api::Generate),
        "/api/chat" => counted(Api::Chat),
        "/api/embed" => counted(Api::Embed),
        "/api/embeddings" => counted(Api::EmbeddingsLegacy),
        "/v1/chat/completions" => counted(Api::OpenAiChat),
        "/v1/completions" => counted(Api::OpenAiCompletions),
        "/v1/embeddings" => counted(Api::OpenAiEmbeddings),
        "/v1/responses" => counted(Api::Responses),
        "/v1/messages" => counted(Api::Messages),
        "/v1/audio/transcriptions" => counted(Api::Transcriptions),
        "/api/tags" if method == "GET" || method == "HEAD" => Route::Free(FreeRoute::Tags),
        "/api/version" | "/api/versions" | "/api/status" if method == "GET" || method == "HEAD" => {
            Route::Free(FreeRoute::Plain)
        }
        "/api/ps" if method == "GET" || method == "HEAD" => Route::Free(FreeRoute::Running),
        "/api/show" if method == "POST" => Route::Free(FreeRoute::Show),
        "/api/quota" | "/v1/quota" if method == "GET" || method == "HEAD" => {
            Route::Free(FreeRoute::Quota)
        }
        "/v1/models" if method == "GET" => Route::Free(FreeRoute::Models),
        "/api/pull" | "/api/push" | "/api/create" | "/api/copy" | "/api/delete" | "/api/me"
        | "/api/signout" => Route::Refused,
        _ if path.starts_with("/api/blobs/")
            || path.starts_with("/api/user/")
            || path.starts_with("/api/experimental/") =>
        {
            Route::Refused
        }
        _ if method == "GET" && model_in_path(path).is_some() => Route::Free(FreeRoute::Model),
        _ => Route::Unknown,
    }
}

/// The `{model}` of `/v1/models/{model}` (model names may contain `/`, e.g. `library/llama3`).
pub fn model_in_path(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/models/").filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every documented route lands in its class.
    #[test]
    fn table() {
        assert_eq!(classify("GET", "/healthz"), Route::Health);
        assert_eq!(classify("POST", "/api/chat"), Route::Counted(Api::Chat));
        assert_eq!(
            classify("POST", "/api/generate"),
            Route::Counted(Api::Generate)
        );
        assert_eq!(classify("POST", "/api/embed"), Route::Counted(Api::Embed));
        assert_eq!(
            classify("POST", "/api/embeddings"),
            Route::Counted(Api::EmbeddingsLegacy)
        );
        assert_eq!(
            classify("POST", "/v1/chat/completions"),
            Route::Counted(Api::OpenAiChat)
        );
        assert_eq!(
            classify("POST", "/v1/completions"),
            Route::Counted(Api::OpenAiCompletions)
        );
        assert_eq!(
            classify("POST", "/v1/embeddings"),
            Route::Counted(Api::OpenAiEmbeddings)
        );
        assert_eq!(
            classify("POST", "/v1/responses"),
            Route::Counted(Api::Responses)
        );
        assert_eq!(
            classify("POST", "/v1/messages"),
            Route::Counted(Api::Messages)
        );
        assert_eq!(
            classify("POST", "/v1/audio/transcriptions"),
            Route::Counted(Api::Transcriptions)
        );
        assert_eq!(classify("GET", "/api/tags"), Route::Free(FreeRoute::Tags));
        assert_eq!(
            classify("GET", "/api/version"),
            Route::Free(FreeRoute::Plain)
        );
        assert_eq!(
            classify("GET", "/api/versions"),
            Route::Free(FreeRoute::Plain)
        );
        assert_eq!(
            classify("GET", "/api/status"),
            Route::Free(FreeRoute::Plain)
        );
        assert_eq!(classify("GET", "/api/ps"), Route::Free(FreeRoute::Running));
        assert_eq!(classify("HEAD", "/"), Route::Root);
        assert_eq!(classify("POST", "/api/show"), Route::Free(FreeRoute::Show));
        assert_eq!(classify("GET", "/api/quota"), Route::Free(FreeRoute::Quota));
        assert_eq!(classify("GET", "/v1/quota"), Route::Free(FreeRoute::Quota));
        assert_eq!(classify("POST", "/v1/quota"), Route::Unknown);
        assert_eq!(
            classify("GET", "/v1/models"),
            Route::Free(FreeRoute::Models)
        );
        assert_eq!(
            classify("GET", "/v1/models/llama3:8b"),
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
            assert_eq!(classify("POST", refused), Route::Refused, "{refused}");
        }
        assert_eq!(classify("DELETE", "/api/delete"), Route::Refused);
        assert_eq!(classify("GET", "/api/chat"), Route::Unknown);
        assert_eq!(classify("GET", "/"), Route::Root);
        assert_eq!(classify("POST", "/"), Route::Unknown);
        assert_eq!(classify("GET", "/v2/anything"), Route::Unknown);
        assert_eq!(classify("POST", "/api/chat/"), Route::Counted(Api::Chat));
    }
}
