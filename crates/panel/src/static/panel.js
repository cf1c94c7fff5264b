// Sluice panel: small enhancements; every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // The error page's Back link goes back in history (its href, the dashboard, without JS).
  for (const back of document.querySelectorAll("a[data-back]")) {
    back.addEventListener("click", (event) => {
      if (history.length > 1) {
        event.preventDefault();
        history.back();
      }
    });
  }

  // An admin's account picker shows the chosen account's items at once.
  for (const picker of document.querySelectorAll("select[data-autosubmit]")) {
    picker.addEventListener("change", () => picker.form.submit());
  }

  // SMTP provider form: the security preset fills in its port.
  const security = document.getElementById("smtp-security");
  const port = document.getElementById("smtp-port");
  if (security && port) {
    security.addEventListener("change", () => {
      port.value = security.selectedOptions[0].dataset.port || "";
    });
  }

  // Template editor: live preview as you type, rendered by the server.
  const form = document.getElementById("template-form");
  if (form) {
    let timer = null;
    const preview = async () => {
      const body = new URLSearchParams(new FormData(form));
      const answer = await fetch(form.dataset.preview, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
      });
      const rendered = await answer.json().catch(() => ({}));
      const error = document.getElementById("preview-error");
      if (!answer.ok) {
        error.textContent = (rendered.error && rendered.error.message) || "preview failed";
        return;
      }
      error.textContent = "";
      document.getElementById("preview-subject").textContent = rendered.subject;
      document.getElementById("preview-text").textContent = rendered.text;
      document.getElementById("preview-html").srcdoc = rendered.html;
    };
    form.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(preview, 250);
    });
    preview();
  }
});
