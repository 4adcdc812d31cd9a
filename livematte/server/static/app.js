// The livematte web page: drop photos, see before/after, pick a background, download.
// One photo goes to POST /api/v1/matting and comes back as a PNG; several go in one request
// (several `file` parts) and come back as a stored zip, split into requests that respect the
// server's limits (GET /api/v1/info).  Backgrounds are composited here, on a canvas, so
// changing the colour never costs another request.
"use strict";

(() => {
  const $ = (sel) => document.querySelector(sel);
  const els = {
    keyBox: $("#key-box"), key: $("#api-key"), drop: $("#drop-zone"), input: $("#file-input"),
    limits: $("#limits"), color: $("#bg-color"), all: $("#download-all"), clear: $("#clear"),
    status: $("#status"), results: $("#results"), template: $("#card-template"),
  };
  const IMAGE_EXT = /\.(png|jpe?g|bmp|gif|webp)$/i;
  let info = { keyless: true, max_batch: 16, max_file_bytes: 15 << 20, max_request_bytes: 100 << 20 };
  let items = []; // {id, file, stem, card, result: Blob|null, error: string|null}
  let nextId = 0;
  let pending = 0;

  function setState(state, text) {
    document.body.dataset.state = state;
    if (text !== undefined) els.status.textContent = text;
  }

  function background() {
    const choice = document.querySelector('input[name="bg"]:checked').value;
    return choice === "color" ? els.color.value : null;
  }

  function applyBackground() {
    const bg = background();
    for (const item of items) {
      const box = item.card.querySelector(".compare");
      box.classList.toggle("checker", bg === null);
      box.style.backgroundColor = bg || "";
    }
  }

  function stemOf(name) {
    return (name.replace(/\.[^.]*$/, "") || "image").replace(/[^\w.-]+/g, "_");
  }

  function addCard(file) {
    const card = els.template.content.firstElementChild.cloneNode(true);
    const item = { id: nextId++, file, stem: stemOf(file.name), card, result: null, error: null };
    card.querySelector(".name").textContent = file.name;
    card.querySelector(".before").src = URL.createObjectURL(file);
    const slider = card.querySelector(".slider");
    const after = card.querySelector(".after");
    const before = card.querySelector(".before");
    // Left of the slider: the original; right: the cut-out (over the chosen background).
    const clip = () => {
      before.style.clipPath = `inset(0 ${100 - slider.value}% 0 0)`;
      after.style.clipPath = `inset(0 0 0 ${slider.value}%)`;
    };
    slider.addEventListener("input", clip);
    clip();
    els.results.prepend(card);
    items.push(item);
    return item;
  }

  function finish(item, blob, error) {
    const card = item.card;
    if (error) {
      item.error = error;
      card.dataset.status = "error";
      card.querySelector(".message").textContent = error;
    } else {
      item.result = blob;
      const after = card.querySelector(".after");
      after.onload = () => { card.dataset.status = "done"; };
      after.src = URL.createObjectURL(blob);
      const link = card.querySelector(".download");
      link.hidden = false;
      link.onclick = async (event) => {
        event.preventDefault();
        saveBlob(await outputBlob(item), `${item.stem}.png`);
      };
    }
    pending -= 1;
    const done = items.filter((i) => i.result).length;
    const failed = items.filter((i) => i.error).length;
    els.all.disabled = done === 0;
    els.clear.disabled = false;
    if (pending === 0) setState(failed ? "error" : "done", `${done} done` + (failed ? `, ${failed} failed` : ""));
    else setState("busy", `${pending} left…`);
  }

  // Split into requests within the server's file-count and byte limits.
  function chunks(list) {
    const out = [];
    let current = [];
    let bytes = 0;
    for (const item of list) {
      const size = item.file.size + 1024;
      if (current.length && (current.length >= info.max_batch || bytes + size > info.max_request_bytes * 0.9)) {
        out.push(current);
        current = [];
        bytes = 0;
      }
      current.push(item);
      bytes += size;
    }
    if (current.length) out.push(current);
    return out;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      return `${body.msg || response.statusText} (code ${body.code})`;
    } catch {
      return `HTTP ${response.status}`;
    }
  }

  async function post(group) {
    const form = new FormData();
    // Name each part by its id so the zip entries map back to cards (names may repeat).
    for (const item of group) form.append("file", item.file, `${item.id}.${item.file.name.split(".").pop()}`);
    const headers = {};
    if (els.key.value.trim()) headers.APIKEY = els.key.value.trim();
    for (let attempt = 0; ; attempt++) {
      const response = await fetch("/api/v1/matting", { method: "POST", body: form, headers });
      if ((response.status === 503 || response.status === 429) && attempt < 5) {
        const wait = Number(response.headers.get("Retry-After") || 1);
        setState("busy", `server busy, retrying in ${wait}s…`);
        await new Promise((r) => setTimeout(r, wait * 1000));
        continue;
      }
      return response;
    }
  }

  async function upload(group) {
    let response;
    try {
      response = await post(group);
    } catch (err) {
      for (const item of group) finish(item, null, `network error: ${err.message}`);
      return;
    }
    if (!response.ok) {
      const text = await errorText(response);
      for (const item of group) finish(item, null, text);
      return;
    }
    const type = response.headers.get("Content-Type") || "";
    if (type.startsWith("image/")) {
      finish(group[0], await response.blob(), null);
      return;
    }
    const entries = LivematteZip.read(await response.arrayBuffer());
    const errors = entries["errors.json"]
      ? JSON.parse(new TextDecoder().decode(entries["errors.json"])) : [];
    for (const item of group) {
      const png = entries[`${item.id}.png`];
      const failure = errors.find((e) => e.file === String(item.id));
      if (png) finish(item, new Blob([png], { type: "image/png" }), null);
      else finish(item, null, failure ? `${failure.msg} (code ${failure.code})` : "missing from the reply");
    }
  }

  async function handle(fileList) {
    const files = [...fileList].filter((f) => f.type.startsWith("image/") || IMAGE_EXT.test(f.name));
    if (!files.length) {
      setState("error", "no image files among those dropped");
      return;
    }
    const fresh = [];
    for (const file of files) {
      const item = addCard(file);
      if (file.size > info.max_file_bytes) {
        pending += 1;
        finish(item, null, `larger than ${Math.round(info.max_file_bytes / 2 ** 20)} MB`);
      } else {
        fresh.push(item);
      }
    }
    applyBackground();
    pending += fresh.length;
    if (fresh.length) setState("busy", `${pending} left…`);
    // One request at a time: the server's worker pool is small and busy answers are retried.
    for (const group of chunks(fresh)) await upload(group);
  }

  // The PNG to download: the cut-out itself, or composited on the chosen colour.
  async function outputBlob(item) {
    const bg = background();
    if (!bg) return item.result;
    const bitmap = await createImageBitmap(item.result);
    const canvas = document.createElement("canvas");
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = bg;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(bitmap, 0, 0);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  }

  function saveBlob(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  async function downloadAll() {
    const files = [];
    const used = new Set();
    for (const item of items.filter((i) => i.result)) {
      let name = `${item.stem}.png`;
      for (let n = 2; used.has(name); n++) name = `${item.stem}-${n}.png`;
      used.add(name);
      files.push({ name, bytes: new Uint8Array(await (await outputBlob(item)).arrayBuffer()) });
    }
    saveBlob(LivematteZip.write(files), "livematte.zip");
  }

  function clearAll() {
    for (const item of items) {
      for (const img of item.card.querySelectorAll("img")) if (img.src) URL.revokeObjectURL(img.src);
      item.card.remove();
    }
    items = [];
    els.all.disabled = true;
    els.clear.disabled = true;
    setState("ready", "");
  }

  els.input.addEventListener("change", () => { handle(els.input.files); els.input.value = ""; });
  els.drop.addEventListener("dragover", (e) => { e.preventDefault(); els.drop.classList.add("over"); });
  els.drop.addEventListener("dragleave", () => els.drop.classList.remove("over"));
  els.drop.addEventListener("drop", (e) => {
    e.preventDefault();
    els.drop.classList.remove("over");
    handle(e.dataTransfer.files);
  });
  els.drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") els.input.click(); });
  for (const radio of document.querySelectorAll('input[name="bg"]')) radio.addEventListener("change", applyBackground);
  els.color.addEventListener("input", () => {
    document.querySelector('input[name="bg"][value="color"]').checked = true;
    applyBackground();
  });
  els.all.addEventListener("click", downloadAll);
  els.clear.addEventListener("click", clearAll);

  fetch("/api/v1/info")
    .then((r) => r.json())
    .then((data) => {
      info = data;
      els.keyBox.hidden = info.keyless;
      els.limits.textContent = `PNG, JPEG, BMP, GIF, WebP; up to ${Math.round(info.max_file_bytes / 2 ** 20)} MB each.`
        + (info.keyless ? " No key needed from this computer." : "");
      setState("ready");
    })
    .catch(() => setState("ready", "could not read the server's limits; using defaults"));

  // For tests and the curious: the page's state, read-only.
  window.livematte = { items: () => items.map(({ id, stem, result, error }) => ({ id, stem, done: !!result, error })) };
})();
