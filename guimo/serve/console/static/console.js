// guimo console: copy buttons and the playground. The page never holds an API key: requests go to
// /console/playground/ENDPOINT with the session cookie and this page's CSRF token, and the server makes
// the API call as the signed-in tenant. The curl line shows the same request with $GUIMO_API_KEY.
"use strict";

function csrfToken() {
  const m = document.querySelector('meta[name="csrf-token"]');
  return m ? m.content : "";
}

function lines(text) {
  return text.split("\n").map((s) => s.trim()).filter(Boolean);
}

const BODIES = {
  completions: (f) => ({ model: f.model.value, prompt: f.prompt.value, max_tokens: Number(f.max_tokens.value),
                         temperature: Number(f.temperature.value), stream: true }),
  recommendations: (f) => ({ model: f.model.value, histories: [f.history.value.split(/[\s,]+/).filter(Boolean)], k: Number(f.k.value) }),
  classifications: (f) => ({ model: f.model.value,
                             input: lines(f.input.value).map((s) => (s.startsWith("{") ? JSON.parse(s) : s)) }),
  search: (f) => ({ collection: f.collection.value, query: f.query.value, k: Number(f.k.value), include_text: true }),
  assistant: (f) => ({ model: f.model.value, text: f.text.value, dry_run: f.dry_run.checked }),
};

function curlLine(endpoint, body) {
  const data = JSON.stringify(body).replace(/'/g, "'\\''");
  return `curl${body.stream ? " -N" : ""} ${location.origin}/v1/${endpoint} -H "Authorization: Bearer $GUIMO_API_KEY" --json '${data}'`;
}

async function streamCompletion(response, out) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  out.textContent = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (!event.startsWith("data: ")) continue;
      const data = event.slice(6);
      if (data === "[DONE]") { out.dataset.done = "true"; return; }
      const chunk = JSON.parse(data);
      if (chunk.error) { out.textContent += `\n[error] ${chunk.error.message}`; return; }
      for (const c of chunk.choices || []) out.textContent += c.text;
    }
  }
}

async function play(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const endpoint = form.dataset.endpoint;
  const out = document.getElementById(`${endpoint}-answer`);
  let body;
  try {
    body = BODIES[endpoint](form.elements);
  } catch (e) {
    out.textContent = `[error] ${e.message}`;
    return;
  }
  document.getElementById(`${endpoint}-curl`).textContent = curlLine(endpoint, body);
  delete out.dataset.done;
  out.textContent = "…";
  const response = await fetch(`/console/playground/${endpoint}`, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() }, body: JSON.stringify(body),
  });
  if (response.ok && (response.headers.get("content-type") || "").startsWith("text/event-stream")) {
    await streamCompletion(response, out);
    return;
  }
  const answer = await response.json();
  out.textContent = response.ok ? JSON.stringify(answer, null, 2) : `[error ${response.status}] ${answer.error.message}`;
  out.dataset.done = "true";
}

function copy(event) {
  const target = document.querySelector(event.currentTarget.dataset.copy);
  if (target && navigator.clipboard) navigator.clipboard.writeText(target.textContent.trim());
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-endpoint]").forEach((f) => f.addEventListener("submit", play));
  document.querySelectorAll("button[data-copy]").forEach((b) => b.addEventListener("click", copy));
});
