// Sluice panel: the capture inbox's live list, message pane, tabs, width preview and keys.
// The page works without this file (links, forms and a refresh); this makes it one page.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const inbox = document.getElementById("inbox");
  if (!inbox) return;
  const csrf = inbox.dataset.csrf;
  const list = document.getElementById("inbox-rows");
  const view = document.getElementById("inbox-view");
  const scopeQuery = new URLSearchParams(location.search);
  scopeQuery.delete("id");
  scopeQuery.delete("cursor");
  scopeQuery.delete("preview");
  let current = Number(view.dataset.selected) || null;
  let cursor = current;
  let lastTab = null;
  let preview = "desktop";

  const rows = () => Array.from(list.querySelectorAll("li.inbox-row"));
  const rowOf = (id) => list.querySelector(`li.inbox-row[data-id="${Number(id)}"]`);
  const inboxUrl = (id) => {
    const query = new URLSearchParams(scopeQuery);
    if (id) query.set("id", id);
    const text = query.toString();
    return text ? `/inbox?${text}` : "/inbox";
  };

  const point = (id) => {
    cursor = id;
    for (const row of rows()) row.classList.toggle("cursor", row.dataset.id === String(id));
    const row = rowOf(id);
    if (row) row.scrollIntoView({ block: "nearest" });
  };

  // Posts a panel form as the script; the panel answers 204 to it.
  const post = (path, fields) => {
    const body = new URLSearchParams({ csrf });
    for (const [key, value] of fields) body.append(key, value);
    return fetch(path, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { "X-Inbox-Script": "1" },
    });
  };

  const setRead = async (ids, read) => {
    const answer = await post("/inbox/read", [...ids.map((id) => ["id", id]), ["read", read ? "1" : "0"]]);
    if (!answer.ok) return;
    for (const id of ids) {
      const row = rowOf(id);
      if (!row) continue;
      row.classList.toggle("unread", !read);
      const dot = row.querySelector(".unread-dot");
      if (read && dot) dot.remove();
    }
  };

  const remove = async (ids) => {
    if (!ids.length) return;
    const answer = await post("/inbox/delete", ids.map((id) => ["id", id]));
    if (!answer.ok) return;
    const order = rows().map((row) => Number(row.dataset.id));
    const at = order.indexOf(Number(cursor));
    for (const id of ids) rowOf(id)?.remove();
    const left = rows();
    const next = left[Math.min(Math.max(at, 0), left.length - 1)];
    if (ids.map(Number).includes(Number(current))) {
      current = null;
      view.innerHTML = '<section class="inbox-message"><p class="inbox-empty">Select a message.</p></section>';
      history.replaceState(null, "", inboxUrl(null));
    }
    if (next) point(Number(next.dataset.id));
  };

  // Tabs, the width preview and the panes' own forms, on the message pane now shown.
  const wire = () => {
    const message = document.getElementById("inbox-message");
    if (!message) return;
    message.classList.add("tabs-on");
    const show = (name) => {
      const tabs = Array.from(message.querySelectorAll("section.tab"));
      if (!tabs.some((t) => t.dataset.tab === name)) name = tabs[0] && tabs[0].dataset.tab;
      for (const tab of tabs) tab.classList.toggle("active", tab.dataset.tab === name);
      for (const link of message.querySelectorAll(".tabs a[data-tab]")) {
        link.classList.toggle("active", link.dataset.tab === name);
        link.setAttribute("aria-selected", String(link.dataset.tab === name));
      }
      lastTab = name;
      // The checks fetch every link and ask spamd: run only when their tab is shown.
      const lazy = tabs.find((t) => t.dataset.tab === name && t.dataset.load && !t.dataset.loaded);
      if (lazy) {
        lazy.dataset.loaded = "1";
        lazy.innerHTML = '<p class="note checks-running">Running the checks…</p>';
        fetch(lazy.dataset.load, { credentials: "same-origin" })
          .then((answer) => (answer.ok ? answer.text() : Promise.reject(answer.status)))
          .then((html) => { lazy.innerHTML = html; })
          .catch((status) => {
            const note = document.createElement("p");
            note.className = "error";
            note.textContent = `The checks could not run (${status}).`;
            lazy.replaceChildren(note);
          });
      }
    };
    for (const link of view.querySelectorAll("a[data-tab]")) {
      link.addEventListener("click", (event) => {
        event.preventDefault();
        show(link.dataset.tab);
      });
    }
    const frame = message.querySelector("iframe.message-html");
    const widths = message.querySelectorAll("a[data-preview]");
    const size = (name) => {
      preview = name;
      if (frame) frame.className = `message-html preview-${name}`;
      for (const link of widths) link.toggleAttribute("aria-current", link.dataset.preview === name);
    };
    for (const link of widths) {
      link.addEventListener("click", (event) => {
        event.preventDefault();
        size(link.dataset.preview);
      });
    }
    size(preview);
    // The checks fetch every link and ask spamd: they run for the message they were asked
    // for, not for each one the cursor passes; the next message opens on its HTML.
    const asked = location.hash.startsWith("#tab-") ? location.hash.slice(5) : null;
    show((lastTab === "checks" ? null : lastTab) || (lastTab ? null : asked) || "html");
  };

  const open = async (id, push = true) => {
    // The scope (search, account) goes along: the pane's forms come back to it.
    const scoped = scopeQuery.toString();
    const answer = await fetch(`/inbox/messages/${Number(id)}${scoped ? `?${scoped}` : ""}`, {
      credentials: "same-origin",
    });
    if (!answer.ok) {
      const note = document.createElement("p");
      note.className = "error";
      note.textContent = `Message #${Number(id)} could not be shown (${answer.status}).`;
      view.replaceChildren(note);
      return;
    }
    view.innerHTML = await answer.text();
    current = Number(id);
    view.dataset.selected = String(current);
    point(current);
    wire();
    if (push) history.pushState({ id: current }, "", inboxUrl(current));
    const row = rowOf(current);
    if (row && row.classList.contains("unread")) setRead([current], true);
  };

  list.addEventListener("click", (event) => {
    const link = event.target.closest("a.inbox-open");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    open(link.dataset.id);
  });
  window.addEventListener("popstate", () => {
    const id = Number(new URLSearchParams(location.search).get("id"));
    if (id) open(id, false);
  });

  const selectAll = document.getElementById("inbox-select-all");
  if (selectAll) {
    selectAll.addEventListener("change", () => {
      for (const box of list.querySelectorAll("input[type=checkbox]")) box.checked = selectAll.checked;
    });
  }
  const deleteAll = document.getElementById("inbox-delete-all");
  if (deleteAll) {
    deleteAll.addEventListener("submit", (event) => {
      if (!confirm("Delete all captured mail in this list?")) event.preventDefault();
    });
  }

  const checked = () => Array.from(list.querySelectorAll("input[type=checkbox]:checked")).map((box) => Number(box.value));
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select, button")) return;
    const order = rows().map((row) => Number(row.dataset.id));
    const at = order.indexOf(Number(cursor));
    const move = (step) => {
      if (!order.length) return;
      const next = at < 0 ? 0 : Math.min(Math.max(at + step, 0), order.length - 1);
      point(order[next]);
    };
    switch (event.key) {
      case "j":
      case "ArrowDown":
        move(1);
        break;
      case "k":
      case "ArrowUp":
        move(-1);
        break;
      case "Enter":
      case "o":
        if (cursor) open(cursor);
        break;
      case "Delete":
      case "#": {
        const chosen = checked();
        remove(chosen.length ? chosen : [cursor || current].filter(Boolean));
        break;
      }
      case "r": {
        const id = cursor || current;
        const row = id && rowOf(id);
        if (row) setRead([id], row.classList.contains("unread"));
        break;
      }
      case "x": {
        const box = cursor && rowOf(cursor)?.querySelector("input[type=checkbox]");
        if (box) box.checked = !box.checked;
        break;
      }
      default:
        return;
    }
    event.preventDefault();
  });

  wire();
  if (current) point(current);

  // New captured mail, live: rows rendered by the server, newest on top.
  const live = document.getElementById("inbox-live");
  if (window.EventSource && inbox.dataset.stream && !new URLSearchParams(location.search).get("cursor")) {
    const join = inbox.dataset.stream.includes("?") ? "&" : "?";
    const source = new EventSource(`${inbox.dataset.stream}${join}after=${Number(inbox.dataset.after) || 0}`);
    source.addEventListener("open", () => { live.hidden = false; });
    source.addEventListener("error", () => { live.hidden = true; });
    source.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      if (rowOf(data.id)) return;
      list.insertAdjacentHTML("afterbegin", data.row);
      document.getElementById("inbox-empty")?.remove();
    });
  }
});
