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

/// Fuel one part may use (minijinja 3 charges one per instruction and one per 64 bytes an
/// operator, filter or literal creates): far above what a mail template needs, low enough
/// that a hostile one stops in well under a second (nested loops over `range(100000)`)
/// and within about 32 MiB of created data (a string doubled in a loop or a recursive
/// macro; `sluice/tests/template_memory.rs`) instead of taking the server's memory.
pub const FUEL: u64 = 500_000;

/// Bytes one part may render to; a template that writes more fails.
pub const MAX_OUTPUT: usize = 4 * 1024 * 1024;

/// Renders the three parts with `data`; an error names the part and line. Each part runs on
/// at most [`FUEL`] instructions and renders to at most [`MAX_OUTPUT`] bytes.
pub fn render(
    subject: &str,
    text: &str,
    html: &str,
    data: &Value,
) -> Result<Rendered, TemplateError> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
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
        let mut out = Bounded(Vec::new());
        env.get_template(name)
            .and_then(|t| t.render_captured_to(minijinja::value::Serde(data), &mut out))
            .map_err(|error| match error.kind() {
                // The writer's error carries no template name.
                minijinja::ErrorKind::WriteFailure => TemplateError {
                    message: format!("{}: renders more than 4 MiB", part_of(Some(name))),
                },
                _ => template_error(error),
            })?;
        String::from_utf8(out.0).map_err(|_| TemplateError {
            message: "template: output is not UTF-8".into(),
        })
    };
    Ok(Rendered {
        subject: render_one("subject.txt")?.trim().to_string(),
        text: render_one("text.txt")?,
        html: render_one("html.html")?,
    })
}

/// A render's output, refusing to grow past [`MAX_OUTPUT`].
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_OUTPUT {
            return Err(std::io::Error::other("output too large"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn part_of(name: Option<&str>) -> &'static str {
    match name {
        Some("subject.txt") => "subject",
        Some("text.txt") => "text",
        Some("html.html") => "html",
        _ => "template",
    }
}

fn template_error(error: minijinja::Error) -> TemplateError {
    let part = part_of(error.name());
    let line = error
        .line()
        .map(|l| format!(" line {l}"))
        .unwrap_or_default();
    let detail = match error.kind() {
        minijinja::ErrorKind::OutOfFuel => "runs too long",
        _ => error.detail().unwrap_or("invalid template"),
    }
    .to_string();
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
    fn hostile_templates_stop() {
        // Nested loops: 10^10 steps, hours of CPU before fuel bounded a render.
        let slow =
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}";
        let started = std::time::Instant::now();
        let error = render(slow, "", "", &json!({})).unwrap_err();
        assert!(error.message.contains("runs too long"), "{}", error.message);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // Few instructions, a lot of output.
        let big = "{% for a in range(100) %}{{ 'x' * 100000 }}{% endfor %}";
        let error = render("s", big, "", &json!({})).unwrap_err();
        assert!(error.message.starts_with("text"), "{}", error.message);
        assert!(error.message.contains("4 MiB"), "{}", error.message);
        // Unbounded recursion is minijinja's own limit.
        let deep = "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}";
        assert!(render("s", "", deep, &json!({})).is_err());
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
