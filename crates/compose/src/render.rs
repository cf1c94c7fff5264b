//! Mail templates: minijinja, HTML autoescaped; the built-in ones used when neither the
//! account nor the system has its own of that name.

use minijinja::{AutoEscape, Environment};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A template that does not render, naming the part and line; the API answers it 422
/// `template_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// (subject, text, html) of a built-in template.
pub fn builtin(name: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match name {
        "welcome" => (
            "Welcome{% if name %}, {{ name }}{% endif %}!",
            "Hello{% if name %} {{ name }}{% endif %},\n\nwelcome aboard.\n",
            "<p>Hello{% if name %} {{ name }}{% endif %},</p><p>welcome aboard.</p>",
        ),
        "notification" => (
            "{{ title | default('Notification') }}",
            "{{ message }}\n",
            "<p>{{ message }}</p>",
        ),
        "error_alert" => (
            "Alert: {{ title | default('an error occurred') }}",
            "{{ message }}\n{% if details %}\n{{ details }}\n{% endif %}",
            "<p><strong>{{ message }}</strong></p>{% if details %}<pre>{{ details }}</pre>{% endif %}",
        ),
        "email_verification" => (
            "Verify your email address",
            "Confirm {{ to }} by opening:\n{{ link }}\n\nCode: {{ token }}\nValid until {{ expiresAt }}.\n",
            "<p>Confirm {{ to }} by opening <a href=\"{{ link }}\">this link</a>.</p><p>Code: <code>{{ token }}</code><br>Valid until {{ expiresAt }}.</p>",
        ),
        "password_reset" => (
            "Reset your password",
            "Reset the password of {{ to }} at:\n{{ link }}\n\nCode: {{ token }}\nValid until {{ expiresAt }}.\n",
            "<p>Reset the password of {{ to }} <a href=\"{{ link }}\">here</a>.</p><p>Code: <code>{{ token }}</code><br>Valid until {{ expiresAt }}.</p>",
        ),
        _ => return None,
    })
}

pub const BUILTIN_NAMES: [&str; 5] = [
    "welcome",
    "notification",
    "error_alert",
    "email_verification",
    "password_reset",
];

/// Renders the three parts with `data`; an error names the part and line.
pub fn render(
    subject: &str,
    text: &str,
    html: &str,
    data: &Value,
) -> Result<Rendered, TemplateError> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    let parts = [
        ("subject.txt", subject),
        ("text.txt", text),
        ("html.html", html),
    ];
    for (name, source) in parts {
        env.add_template_owned(name.to_string(), source.to_string())
            .map_err(template_error)?;
    }
    let render_one = |name: &str| {
        env.get_template(name)
            .and_then(|t| t.render(minijinja::value::Serde(data)))
            .map_err(template_error)
    };
    Ok(Rendered {
        subject: render_one("subject.txt")?.trim().to_string(),
        text: render_one("text.txt")?,
        html: render_one("html.html")?,
    })
}

fn template_error(error: minijinja::Error) -> TemplateError {
    let part = match error.name() {
        Some("subject.txt") => "subject",
        Some("text.txt") => "text",
        Some("html.html") => "html",
        _ => "template",
    };
    let line = error
        .line()
        .map(|l| format!(" line {l}"))
        .unwrap_or_default();
    let detail = error.detail().unwrap_or("invalid template").to_string();
    TemplateError {
        message: format!("{part}{line}: {} ({detail})", error.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_and_escapes_only_html() {
        let out = render(
            "Hi {{ n }}",
            "T {{ n }}",
            "<b>{{ n }}</b>",
            &json!({ "n": "<x>" }),
        )
        .unwrap();
        assert_eq!(out.subject, "Hi <x>");
        assert_eq!(out.text, "T <x>");
        assert_eq!(out.html, "<b>&lt;x&gt;</b>");
    }

    #[test]
    fn errors_name_the_part_and_line() {
        let error = render("ok", "line one\n{{ broken", "", &json!({})).unwrap_err();
        assert!(
            error.message.starts_with("text line 2"),
            "{}",
            error.message
        );
    }

    #[test]
    fn builtins_render() {
        for name in BUILTIN_NAMES {
            let (s, t, h) = builtin(name).unwrap();
            let data = json!({ "to": "a@b.c", "link": "https://x/y", "token": "123", "expiresAt": "2026-01-01T00:00:00Z", "message": "m" });
            let out = render(s, t, h, &data).unwrap();
            assert!(!out.subject.is_empty(), "{name}");
        }
    }
}
