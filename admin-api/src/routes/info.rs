//! `/api/health` (no password) and `/api/proxy-info`: how clients reach the proxy, with
//! copy-paste examples for curl, the `ollama` Python package and the `openai` Python package.
//!
//! The proxy's URL is the configured public URL when there is one; otherwise the host the
//! operator used to reach the admin API (its `Host` header, port dropped) with the proxy's
//! port, which is right whenever admin and proxy run on the same machine.

use std::sync::Arc;

use axum::extract::State;
use axum::http::uri::Authority;
use axum::http::{header, HeaderMap};
use axum::routing::get;
use axum::{Json, Router};
use quota_engine::settings;

use crate::error::{ApiResult, ErrorBody};
use crate::views::{EndpointView, ExamplesView, HealthView, ProxyInfoView};
use crate::AdminState;

pub fn router() -> Router<Arc<AdminState>> {
    Router::new().route("/api/proxy-info", get(proxy_info))
}

/// Liveness of the admin API; needs no password.
#[utoipa::path(get, path = "/api/health", operation_id = "health", tag = "info",
    responses((status = 200, description = "the admin API is up", body = HealthView)))]
pub async fn health() -> Json<HealthView> {
    Json(HealthView {
        status: "ok".into(),
    })
}

/// Where and how clients connect to the proxy.
#[utoipa::path(get, path = "/api/proxy-info", operation_id = "get_proxy_info", tag = "info",
    responses(
        (status = 200, description = "proxy URL, routes and examples", body = ProxyInfoView),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn proxy_info(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
) -> ApiResult<Json<ProxyInfoView>> {
    let overrides = settings::load(&state.db).await?;
    let model = overrides
        .default_model
        .unwrap_or_else(|| state.configured_default_model.clone());
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let base = proxy_url(state.public_url.as_deref(), host, state.proxy_port);
    Ok(Json(ProxyInfoView {
        openai_base_url: format!("{base}/v1"),
        endpoints: endpoints(&base),
        examples: examples(&base, &model),
        default_model: model,
        proxy_url: base,
    }))
}

/// The public URL (without a trailing `/`), else `http://<admin Host's host>:<proxy port>`.
fn proxy_url(public_url: Option<&str>, host_header: Option<&str>, port: u16) -> String {
    if let Some(url) = public_url.map(str::trim).filter(|u| !u.is_empty()) {
        return url.trim_end_matches('/').to_owned();
    }
    let host = host_header
        .and_then(|h| h.trim().parse::<Authority>().ok())
        .map_or_else(|| "localhost".to_owned(), |a| a.host().to_owned());
    format!("http://{host}:{port}")
}

/// The proxy's routes for key holders (docs/api.md, "Routes"): method, path, counted, what it does.
const ROUTES: &[(&str, &str, bool, &str)] = &[
    ("POST", "/api/chat", true, "Ollama chat"),
    ("POST", "/api/generate", true, "Ollama completion"),
    ("POST", "/api/embed", true, "Ollama embeddings"),
    (
        "POST",
        "/api/embeddings",
        true,
        "Ollama embeddings (legacy)",
    ),
    ("GET", "/api/tags", false, "models this key may use"),
    ("POST", "/api/show", false, "model details"),
    ("GET", "/api/ps", false, "loaded models"),
    ("GET", "/api/version", false, "Ollama version"),
    (
        "POST",
        "/v1/chat/completions",
        true,
        "OpenAI chat completions",
    ),
    ("POST", "/v1/completions", true, "OpenAI completions"),
    ("POST", "/v1/embeddings", true, "OpenAI embeddings"),
    ("POST", "/v1/responses", true, "OpenAI Responses API"),
    ("POST", "/v1/messages", true, "Anthropic-style messages"),
    (
        "GET",
        "/v1/models",
        false,
        "models this key may use (OpenAI shape)",
    ),
    (
        "GET",
        "/v1/models/{model}",
        false,
        "one model (OpenAI shape)",
    ),
];

fn endpoints(base: &str) -> Vec<EndpointView> {
    ROUTES
        .iter()
        .map(|&(method, path, counted, description)| EndpointView {
            method: method.into(),
            path: path.into(),
            url: format!("{base}{path}"),
            counts_toward_quota: counted,
            description: description.into(),
        })
        .collect()
}

/// A JSON string literal, which is also a valid Python string literal.
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn examples(base: &str, model: &str) -> ExamplesView {
    let chat_body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "Hello!"}],
        "stream": false,
    })
    .to_string()
    .replace('\'', r"'\''");
    let (base_q, openai_q, model_q) = (quoted(base), quoted(&format!("{base}/v1")), quoted(model));
    ExamplesView {
        curl: format!(
            "curl {base}/api/chat \\\n  -H \"Authorization: Bearer $LLM_QUOTA_API_KEY\" \\\n  -H \"Content-Type: application/json\" \\\n  -d '{chat_body}'"
        ),
        ollama_python: format!(
            "import os\nfrom ollama import Client\n\nclient = Client(\n    host={base_q},\n    headers={{\"Authorization\": \"Bearer \" + os.environ[\"LLM_QUOTA_API_KEY\"]}},\n)\nresponse = client.chat(model={model_q}, messages=[{{\"role\": \"user\", \"content\": \"Hello!\"}}])\nprint(response.message.content)\n"
        ),
        openai_python: format!(
            "import os\nfrom openai import OpenAI\n\nclient = OpenAI(base_url={openai_q}, api_key=os.environ[\"LLM_QUOTA_API_KEY\"])\nresponse = client.chat.completions.create(\n    model={model_q},\n    messages=[{{\"role\": \"user\", \"content\": \"Hello!\"}}],\n)\nprint(response.choices[0].message.content)\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public URL wins; else the admin request's host with the proxy port.
    #[test]
    fn proxy_url_sources() {
        assert_eq!(
            proxy_url(Some("https://llm.example.com/"), Some("x:8001"), 8000),
            "https://llm.example.com"
        );
        assert_eq!(
            proxy_url(None, Some("gpu-box:8001"), 8000),
            "http://gpu-box:8000"
        );
        assert_eq!(proxy_url(None, Some("[::1]:8001"), 9), "http://[::1]:9");
        assert_eq!(proxy_url(Some(" "), None, 8000), "http://localhost:8000");
        assert_eq!(
            proxy_url(None, Some("bad host"), 8000),
            "http://localhost:8000"
        );
    }

    /// Examples carry the proxy URL and the model, and quote a model name safely for shell.
    #[test]
    fn examples_are_filled_in() {
        let e = examples("http://h:8000", "it's");
        assert!(e.curl.starts_with("curl http://h:8000/api/chat"));
        assert!(e.curl.contains(r#""model":"it'\''s""#), "{}", e.curl);
        assert!(e.ollama_python.contains(r#"host="http://h:8000""#));
        assert!(e.openai_python.contains(r#"base_url="http://h:8000/v1""#));
        assert!(e.openai_python.contains(r#"model="it's""#));
    }
}
