// Media Lab sandbox chat page: a Telegram-like chat with the bot through the Bot API
// emulator's control API (/_emu/...). No framework, no CDN: it must work offline.
"use strict";

const I18N = {
  ru: {
    online: "бот · песочница",
    offline: "нет связи с эмулятором…",
    waitingBot: "бот ещё не подключился…",
    empty: "Это песочница Media Lab: здесь вы говорите с ботом так же, как в Telegram. "
      + "Нажмите /start, чтобы начать.",
    placeholder: "Сообщение",
    placeholderFiles: "Подпись (необязательно)",
    asDocument: "Отправить как файл (без сжатия)",
    edited: "изменено",
    download: "Скачать",
    open: "Открыть",
    newUser: "👤 Новый пользователь",
    health: "🩺 Состояние сервера",
    switchLang: "🌐 English",
    who: (u) => `Вы: ${u.first_name} · id ${u.id}`,
    tooManyFiles: "В альбоме не больше 10 файлов",
    sendFailed: "Не отправилось: ",
    pressFailed: "Кнопка не сработала: ",
    notImage: "Это не картинка — отправлю как файл",
    badge: (info) => [
      info.yookassa === "emulator" ? "ЮKassa: эмулятор, платежи тестовые" : "ЮKassa: настоящая",
      info.fal === "fake" ? "🎨 фейковый генератор (не нейросеть)" : "",
    ].filter(Boolean).join(" · "),
    commands: "Команды бота",
    noCommands: "Бот ещё не прислал список команд",
    photo: "Фото",
    album: "Альбом",
    pay: (n) => `Оплатить ⭐${n}`,
    paying: "Оплата…",
    paid: "✅ Оплачено",
    refunded: "↩️ Звёзды возвращены",
    notEnoughStars: (n) => `Не хватает звёзд: на счету ⭐${n}. Добавьте их кнопкой ⭐ вверху.`,
    noAnswer: "Бот не ответил за 10 секунд — оплата не прошла",
    payFailed: "Оплата не прошла: ",
    servicePaid: (n) => `Вы оплатили ⭐${n}`,
    serviceRefunded: (n) => `Возвращено ⭐${n}`,
    starsTitle: "Звёзды Telegram этого пользователя",
    starsHint: "Выдать звёзды (песочница: Telegram их не продаёт)",
    starsAdded: (n) => `Добавлено ⭐${n}`,
    starsFailed: "Звёзды не добавлены: ",
  },
  en: {
    online: "bot · sandbox",
    offline: "the emulator does not answer…",
    waitingBot: "the bot has not connected yet…",
    empty: "This is the Media Lab sandbox: talk to the bot here as you would in Telegram. "
      + "Press /start to begin.",
    placeholder: "Message",
    placeholderFiles: "Caption (optional)",
    asDocument: "Send as a file (uncompressed)",
    edited: "edited",
    download: "Download",
    open: "Open",
    newUser: "👤 New user",
    health: "🩺 Server health",
    switchLang: "🌐 Русский",
    who: (u) => `You: ${u.first_name} · id ${u.id}`,
    tooManyFiles: "An album holds at most 10 files",
    sendFailed: "Not sent: ",
    pressFailed: "The button failed: ",
    notImage: "Not an image — it goes as a file",
    badge: (info) => [
      info.yookassa === "emulator" ? "YooKassa: emulator, test payments" : "YooKassa: real",
      info.fal === "fake" ? "🎨 fake generator (not a neural network)" : "",
    ].filter(Boolean).join(" · "),
    commands: "Bot commands",
    noCommands: "The bot has not set its commands yet",
    photo: "Photo",
    album: "Album",
    pay: (n) => `Pay ⭐${n}`,
    paying: "Paying…",
    paid: "✅ Paid",
    refunded: "↩️ Stars refunded",
    notEnoughStars: (n) => `Not enough Stars: ⭐${n} left. Add some with the ⭐ button above.`,
    noAnswer: "The bot did not answer within 10 seconds: not paid",
    payFailed: "Not paid: ",
    servicePaid: (n) => `You paid ⭐${n}`,
    serviceRefunded: (n) => `⭐${n} refunded`,
    starsTitle: "This user's Telegram Stars",
    starsHint: "Give Stars (sandbox: Telegram does not sell them here)",
    starsAdded: (n) => `Added ⭐${n}`,
    starsFailed: "Stars not added: ",
  },
};

const $ = (id) => document.getElementById(id);
const state = {
  user: null,
  lang: "ru",
  info: {},
  version: 0,
  records: new Map(), // message_id -> message view
  files: [], // File objects waiting to be sent
  pendingPress: new Map(), // callback query id -> button element
  connected: true,
  chatExists: false,
  stars: null, // the user's ⭐ balance in the emulator
  invoiceNotes: new Map(), // invoice message_id -> {kind, text} of the last Pay press
  paying: new Set(), // invoice message_ids whose Pay press is in flight
  stickToBottom: true,
};

function tr(key, ...args) {
  const value = (I18N[state.lang] || I18N.ru)[key];
  return typeof value === "function" ? value(...args) : value;
}

// ------------------------------------------------------------------ helpers

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  }[c]));
}

function safeUrl(url) {
  return /^(https?:\/\/|tg:\/\/|mailto:)/i.test(url || "") ? url : null;
}

function fileUrl(fileId) {
  return `/_emu/files/${encodeURIComponent(fileId)}`;
}

function formatTime(unix) {
  const d = new Date((unix || 0) * 1000);
  return d.toLocaleTimeString(state.lang === "en" ? "en-GB" : "ru-RU",
    { hour: "2-digit", minute: "2-digit" });
}

function formatSize(bytes) {
  if (!bytes && bytes !== 0) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// Telegram entities -> HTML. Offsets are UTF-16 code units, as are JS string indices.
function renderEntities(text, entities) {
  const list = (entities || []).slice().sort((a, b) => a.offset - b.offset || b.length - a.length);
  function build(start, end, items) {
    let out = "";
    let pos = start;
    let i = 0;
    while (i < items.length) {
      const e = items[i];
      if (e.offset < pos) { i += 1; continue; } // overlapping: ignore
      const eEnd = e.offset + e.length;
      out += escapeHtml(text.slice(pos, e.offset));
      const inner = [];
      let j = i + 1;
      while (j < items.length && items[j].offset < eEnd) {
        if (items[j].offset + items[j].length <= eEnd) inner.push(items[j]);
        j += 1;
      }
      out += wrapEntity(e, build(e.offset, eEnd, inner), text.slice(e.offset, eEnd));
      pos = eEnd;
      i = j;
    }
    return out + escapeHtml(text.slice(pos, end));
  }
  return build(0, text.length, list);
}

function wrapEntity(e, html, raw) {
  switch (e.type) {
    case "bold": return `<b>${html}</b>`;
    case "italic": return `<i>${html}</i>`;
    case "underline": return `<u>${html}</u>`;
    case "strikethrough": return `<s>${html}</s>`;
    case "spoiler": return `<span class="spoiler" tabindex="0">${html}</span>`;
    case "code": return `<code>${html}</code>`;
    case "pre": return `<pre><code>${html}</code></pre>`;
    case "blockquote":
    case "expandable_blockquote": return `<blockquote>${html}</blockquote>`;
    case "text_link": {
      const url = safeUrl(e.url);
      return url ? `<a href="${escapeHtml(url)}" target="_blank" rel="noopener">${html}</a>` : html;
    }
    case "url": {
      const url = safeUrl(/^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`);
      return url ? `<a href="${escapeHtml(url)}" target="_blank" rel="noopener">${html}</a>` : html;
    }
    case "email": return `<a href="mailto:${escapeHtml(raw)}">${html}</a>`;
    case "bot_command":
      return `<a href="#" class="cmd" data-command="${escapeHtml(raw)}">${html}</a>`;
    default: return html;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    const error = new Error((body && (body.error || body.description)) || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function identity() {
  return {
    user_id: state.user.id,
    first_name: state.user.first_name,
    language_code: state.user.language,
  };
}

function postJson(path, payload) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...identity(), ...payload }),
  });
}

// ------------------------------------------------------------------- toasts

let toastTimer = null;
function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 3500);
}

function alertBox(text) {
  $("modal-text").textContent = text;
  $("modal").hidden = false;
  $("modal-ok").focus();
}

// ---------------------------------------------------------------- rendering

function isNearBottom() {
  const chat = $("chat");
  return chat.scrollHeight - chat.scrollTop - chat.clientHeight < 120;
}

function scrollToBottom(force) {
  const chat = $("chat");
  if (force || state.stickToBottom) chat.scrollTop = chat.scrollHeight;
}

function biggestPhoto(photo) {
  return (photo || []).reduce((best, p) =>
    (!best || (p.width || 0) * (p.height || 0) > (best.width || 0) * (best.height || 0) ? p : best),
  null);
}

// A payment's service line in the chat (Telegram draws these centred, not as bubbles).
function buildService(m) {
  const el = document.createElement("div");
  el.className = "msg service";
  el.setAttribute("data-testid", "service");
  el.dataset.messageId = m.message_id;
  const paid = m.successful_payment;
  const back = m.refunded_payment;
  const text = document.createElement("span");
  text.textContent = paid
    ? tr("servicePaid", paid.total_amount) : tr("serviceRefunded", back.total_amount);
  el.appendChild(text);
  return el;
}

function invoiceIsPaid(m) {
  const note = state.invoiceNotes.get(m.message_id);
  return !!m.invoice_state || (note && note.kind === "ok");
}

// The invoice's card inside the bubble: title, description, the price in ⭐ and what became
// of the last Pay press (the bot's refusal, "paid", "refunded").
function buildInvoice(m) {
  const inv = m.invoice;
  const card = document.createElement("div");
  card.className = "invoice";
  card.setAttribute("data-testid", "invoice");
  const title = document.createElement("div");
  title.className = "invoice-title";
  title.setAttribute("data-testid", "invoice-title");
  title.textContent = inv.title;
  const desc = document.createElement("div");
  desc.className = "invoice-desc";
  desc.textContent = inv.description;
  const amount = document.createElement("div");
  amount.className = "invoice-amount";
  amount.setAttribute("data-testid", "invoice-amount");
  amount.textContent = inv.currency === "XTR"
    ? `⭐ ${inv.total_amount}` : `${inv.total_amount} ${inv.currency}`;
  card.append(title, desc, amount);
  const status = document.createElement("div");
  status.className = "invoice-status";
  status.setAttribute("data-testid", "invoice-status");
  const note = state.invoiceNotes.get(m.message_id);
  if (m.invoice_state) {
    status.textContent = m.invoice_state.refunded ? tr("refunded") : tr("paid");
    status.classList.add(m.invoice_state.refunded ? "refunded" : "ok");
  } else if (note) {
    status.textContent = note.text;
    status.classList.add(note.kind);
  }
  status.hidden = !status.textContent;
  card.appendChild(status);
  return card;
}

function buildPayButton(m, text) {
  const btn = document.createElement("button");
  btn.type = "button";
  btn.className = "kb-btn pay";
  btn.textContent = text || tr("pay", m.invoice.total_amount);
  btn.setAttribute("data-testid", "pay");
  btn.disabled = invoiceIsPaid(m) || state.paying.has(m.message_id);
  if (state.paying.has(m.message_id)) btn.classList.add("loading");
  btn.addEventListener("click", () => payInvoice(m.message_id));
  return btn;
}

function buildMessage(m) {
  if (m.successful_payment || m.refunded_payment) return buildService(m);
  const fromBot = !!m.from_bot;
  const el = document.createElement("div");
  el.className = `msg ${fromBot ? "in" : "out"}`;
  el.dataset.testid = "message";
  el.setAttribute("data-testid", "message");
  el.dataset.from = fromBot ? "bot" : "user";
  el.dataset.messageId = m.message_id;
  if (m.media_group_id) el.dataset.group = m.media_group_id;

  const bubble = document.createElement("div");
  bubble.className = "bubble";
  el.appendChild(bubble);

  if (m.reply_to_message) {
    const q = document.createElement("div");
    q.className = "quote";
    const r = m.reply_to_message;
    q.textContent = r.text || r.caption || (r.photo ? tr("photo") : (r.document && r.document.file_name) || "…");
    bubble.appendChild(q);
  }

  if (m.photo && m.photo.length) {
    const p = biggestPhoto(m.photo);
    const link = document.createElement("a");
    link.href = fileUrl(p.file_id);
    link.target = "_blank";
    link.rel = "noopener";
    link.className = "photo";
    const img = document.createElement("img");
    img.src = fileUrl(p.file_id);
    img.alt = tr("photo");
    img.loading = "lazy";
    img.setAttribute("data-testid", "photo");
    if (p.width && p.height) {
      img.width = Math.min(p.width, 300);
      img.height = Math.round(img.width * p.height / p.width);
    }
    img.addEventListener("load", () => scrollToBottom(false));
    link.appendChild(img);
    bubble.appendChild(link);
    const dl = document.createElement("a");
    dl.href = fileUrl(p.file_id);
    dl.download = `photo_${m.message_id}.jpg`;
    dl.className = "photo-download";
    dl.textContent = "⬇";
    dl.title = `${tr("download")} · ${p.width}×${p.height}`;
    dl.setAttribute("data-testid", "photo-download");
    bubble.appendChild(dl);
  }

  if (m.document) {
    const d = m.document;
    const card = document.createElement("a");
    card.className = "document";
    card.href = fileUrl(d.file_id);
    card.download = d.file_name || `file_${m.message_id}`;
    card.setAttribute("data-testid", "document");
    card.dataset.fileName = d.file_name || "";
    const isImage = /^image\//.test(d.mime_type || "");
    if (isImage) {
      const img = document.createElement("img");
      img.src = fileUrl(d.file_id);
      img.alt = d.file_name || "";
      img.className = "doc-preview";
      img.addEventListener("load", () => scrollToBottom(false));
      card.appendChild(img);
    } else {
      const icon = document.createElement("span");
      icon.className = "doc-icon";
      icon.textContent = "📄";
      card.appendChild(icon);
    }
    const meta = document.createElement("span");
    meta.className = "doc-meta";
    meta.innerHTML = `<span class="doc-name">${escapeHtml(d.file_name || "file")}</span>`
      + `<span class="doc-size">${escapeHtml(formatSize(d.file_size))} · ${escapeHtml(tr("download"))}</span>`;
    card.appendChild(meta);
    bubble.appendChild(card);
  }

  if (m.invoice) bubble.appendChild(buildInvoice(m));

  const text = m.text !== undefined ? m.text : m.caption;
  if (text) {
    const t = document.createElement("div");
    t.className = "text";
    t.setAttribute("data-testid", "message-text");
    t.innerHTML = renderEntities(text, m.text !== undefined ? m.entities : m.caption_entities);
    bubble.appendChild(t);
  }

  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = (m.edit_date ? `${tr("edited")} · ` : "") + formatTime(m.edit_date || m.date);
  bubble.appendChild(meta);

  let rows = (m.reply_markup && m.reply_markup.inline_keyboard) || [];
  // An invoice's first button is its Pay button; with no keyboard Telegram draws one.
  if (m.invoice && !(rows[0] && rows[0][0] && rows[0][0].pay)) {
    rows = [[{ pay: true }], ...rows];
  }
  if (rows.length) {
    const kb = document.createElement("div");
    kb.className = "keyboard";
    kb.setAttribute("data-testid", "keyboard");
    for (const row of rows) {
      const r = document.createElement("div");
      r.className = "kb-row";
      for (const b of row) r.appendChild(buildButton(m, b));
      kb.appendChild(r);
    }
    el.appendChild(kb);
  }
  return el;
}

function buildButton(m, b) {
  if (b.pay && m.invoice) return buildPayButton(m, b.text);
  if (b.url) {
    const a = document.createElement("a");
    a.className = "kb-btn url";
    const url = safeUrl(b.url);
    if (url) a.href = url;
    a.target = "_blank";
    a.rel = "noopener";
    a.textContent = b.text;
    a.setAttribute("data-testid", "inline-button");
    a.dataset.url = b.url;
    return a;
  }
  const btn = document.createElement("button");
  btn.type = "button";
  btn.className = "kb-btn";
  btn.textContent = b.text;
  btn.setAttribute("data-testid", "inline-button");
  if (b.web_app && b.web_app.url) {
    btn.classList.add("webapp-btn");
    btn.addEventListener("click", () => openWebApp(b.web_app.url, b.text));
    return btn;
  }
  if (b.callback_data === undefined) {
    btn.disabled = true;
    btn.title = "не поддерживается в песочнице";
    return btn;
  }
  btn.addEventListener("click", () => press(m.message_id, b.callback_data, btn));
  return btn;
}

function renderRecord(m) {
  const chat = $("chat");
  const existing = chat.querySelector(`.msg[data-message-id="${m.message_id}"]`);
  if (m.deleted) {
    if (existing) existing.remove();
    state.records.delete(m.message_id);
    updateEmpty();
    return;
  }
  state.records.set(m.message_id, m);
  const el = buildMessage(m);
  if (existing) {
    existing.replaceWith(el);
  } else {
    // keep the order of message ids (an edit never moves a message)
    const later = [...chat.querySelectorAll(".msg")].find(
      (x) => Number(x.dataset.messageId) > m.message_id);
    if (later) chat.insertBefore(el, later); else chat.appendChild(el);
  }
  markAlbums();
  updateEmpty();
}

// Consecutive messages of one media group are drawn as one album.
function markAlbums() {
  const msgs = [...$("chat").querySelectorAll(".msg")];
  msgs.forEach((el, i) => {
    const g = el.dataset.group;
    const prev = msgs[i - 1];
    const next = msgs[i + 1];
    el.classList.toggle("album-cont", !!g && prev && prev.dataset.group === g);
    el.classList.toggle("album-more", !!g && next && next.dataset.group === g);
  });
}

function updateEmpty() {
  $("empty").hidden = state.records.size > 0;
}

function renderReplyKeyboard(markup) {
  const box = $("reply-keyboard");
  box.innerHTML = "";
  const rows = (markup && markup.keyboard) || [];
  box.hidden = rows.length === 0;
  for (const row of rows) {
    const r = document.createElement("div");
    r.className = "kb-row";
    for (const b of row) {
      const text = typeof b === "string" ? b : b.text;
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "kb-btn";
      btn.textContent = text;
      btn.addEventListener("click", () => sendText(text));
      r.appendChild(btn);
    }
    box.appendChild(r);
  }
}

function handleAnswers(answers) {
  for (const a of answers || []) {
    const btn = state.pendingPress.get(a.callback_query_id);
    if (btn) {
      btn.classList.remove("loading");
      state.pendingPress.delete(a.callback_query_id);
    }
    if (a.url && safeUrl(a.url)) window.open(a.url, "_blank", "noopener");
    if (a.text) {
      if (a.show_alert) alertBox(a.text); else toast(a.text);
    }
  }
}

// -------------------------------------------------------------- live updates

function setConnected(ok, text) {
  state.connected = ok;
  const banner = $("conn-banner");
  banner.hidden = ok;
  if (!ok) banner.textContent = text || tr("offline");
}

async function pollLoop() {
  let first = true;
  for (;;) {
    try {
      const timeout = first ? 0 : 25;
      const body = await api(
        `/_emu/chats/${state.user.id}/changes?since=${state.version}&timeout=${timeout}`);
      first = false;
      state.chatExists = true;
      setConnected(true);
      state.stickToBottom = isNearBottom();
      const fresh = state.version === 0;
      for (const m of body.messages || []) renderRecord(m);
      if (!fresh) handleAnswers(body.callback_answers);
      renderReplyKeyboard(body.reply_keyboard);
      if (typeof body.stars === "number") setStars(body.stars);
      state.version = body.version;
      scrollToBottom(fresh);
    } catch (err) {
      if (err.status === 404) {
        // No chat yet: it appears with the user's first message.
        first = false;
        state.chatExists = false;
        setConnected(true);
        await sleep(700);
      } else {
        setConnected(false);
        await sleep(2000);
      }
    }
  }
}

async function botStatusLoop() {
  for (;;) {
    try {
      const info = await api("/_emu/bot");
      const polling = info.me && info.bound;
      $("bot-name").textContent = (info.me && info.me.first_name) || "Media Lab";
      $("bot-status").textContent = polling ? tr("online") : tr("waitingBot");
      state.commands = pickCommands(info.commands || {});
    } catch (_) {
      $("bot-status").textContent = tr("offline");
    }
    await sleep(5000);
  }
}

function pickCommands(all) {
  let fallback = [];
  for (const [key, list] of Object.entries(all)) {
    let parsed = {};
    try { parsed = JSON.parse(key); } catch (_) { continue; }
    if (parsed.lang === state.lang) return list;
    if (!parsed.lang) fallback = list;
  }
  return fallback;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------- actions

async function sendText(text) {
  const value = (text || "").trim();
  if (!value) return;
  try {
    await postJson("/_emu/send_message", { text: value });
  } catch (err) {
    toast(tr("sendFailed") + err.message);
    throw err;
  }
}

async function sendFile(file, extra) {
  const form = new FormData();
  const fields = { ...identity(), ...extra };
  for (const [k, v] of Object.entries(fields)) {
    if (v !== undefined && v !== null && v !== "") form.append(k, String(v));
  }
  form.append("file", file, file.name || "photo.jpg");
  return api("/_emu/send_photo", { method: "POST", body: form });
}

async function sendFiles(files, caption, asDocument) {
  const album = files.length > 1
    ? `${Date.now()}${Math.floor(Math.random() * 1e6)}` : null;
  for (let i = 0; i < files.length; i += 1) {
    const file = files[i];
    const isImage = /^image\//.test(file.type || "");
    await sendFile(file, {
      caption: i === 0 ? caption : "",
      media_group_id: album,
      as_document: asDocument || !isImage ? "true" : "",
      file_name: file.name,
      mime_type: file.type,
    });
  }
}

// ------------------------------------------------------------ the Mini App

// Telegram's theme parameters for the Mini App (its --tg-theme-* variables), light or dark
// as the system is.
function themeParams() {
  const dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  return dark
    ? { bg_color: "#17212b", text_color: "#f5f5f5", hint_color: "#708499",
      link_color: "#6ab3f3", button_color: "#5288c1", button_text_color: "#ffffff",
      secondary_bg_color: "#232e3c" }
    : { bg_color: "#ffffff", text_color: "#000000", hint_color: "#707579",
      link_color: "#2481cc", button_color: "#2481cc", button_text_color: "#ffffff",
      secondary_bg_color: "#f1f1f4" };
}

// Opens the Mini App in the panel beside the chat as Telegram's web client does: the URL
// with its launch parameters in the fragment, the init data signed by the emulator with the
// bot's token (POST /_emu/webapp).
async function openWebApp(url, title) {
  try {
    const body = await postJson("/_emu/webapp", {});
    const launch = new URLSearchParams({
      tgWebAppData: body.init_data,
      tgWebAppVersion: "8.0",
      tgWebAppPlatform: "web",
      tgWebAppThemeParams: JSON.stringify(themeParams()),
    });
    const frame = $("webapp-frame");
    frame.dataset.ready = "";
    frame.src = `${url.split("#")[0]}#${launch}`;
    $("webapp-title").textContent = title || "";
    $("webapp").hidden = false;
    document.body.classList.add("webapp-open");
  } catch (err) {
    toast(`Mini App: ${err.message}`);
  }
}

function closeWebApp() {
  $("webapp").hidden = true;
  $("webapp-frame").src = "about:blank";
  document.body.classList.remove("webapp-open");
}

function toWebApp(eventType, eventData) {
  const frame = $("webapp-frame");
  if (frame.contentWindow) {
    frame.contentWindow.postMessage(JSON.stringify({ eventType, eventData }), "*");
  }
}

// The Mini App's calls to Telegram (postEvent through window.parent, as in Telegram Web).
window.addEventListener("message", async (event) => {
  if (event.source !== $("webapp-frame").contentWindow) return;
  let message;
  try { message = JSON.parse(event.data); } catch (_) { return; }
  const data = message.eventData || {};
  if (message.eventType === "web_app_ready") {
    $("webapp-frame").dataset.ready = "1";
  } else if (message.eventType === "web_app_close") {
    closeWebApp();
  } else if (message.eventType === "web_app_open_link" && /^https?:\/\//.test(data.url || "")) {
    // openLink: Telegram opens the page outside the app (here the YooKassa emulator's
    // checkout in a new tab); the Mini App stays open for the user's return.
    window.open(data.url, "_blank", "noopener");
  } else if (message.eventType === "web_app_open_invoice" && data.slug) {
    // Telegram's payment sheet, in short: the user pays at once (the emulator checks the
    // ⭐ balance, asks the bot's pre-checkout, then sends successful_payment).
    let status = "failed";
    try {
      const paid = await postJson("/_emu/pay_link", { link: `https://t.me/$${data.slug}` });
      status = paid.ok ? "paid" : "failed";
      if (!paid.ok) toast(tr("payFailed") + (paid.error || ""));
    } catch (err) {
      toast(tr("payFailed") + err.message);
    }
    refreshStars();
    toWebApp("invoice_closed", { slug: data.slug, status });
  }
});

// The menu button the bot set (setChatMenuButton): a web_app one opens the Mini App.
async function refreshMenuButton() {
  try {
    const body = await postJson("/_emu/webapp", {});
    const button = body.menu_button;
    if (button) {
      const btn = $("webapp-btn");
      btn.textContent = button.text;
      btn.hidden = false;
      btn.onclick = () => openWebApp(button.web_app.url, button.text);
      return;
    }
  } catch (_) { /* no bot yet */ }
  setTimeout(refreshMenuButton, 5000);
}

async function press(messageId, data, btn) {
  btn.classList.add("loading");
  try {
    const body = await postJson("/_emu/press", { message_id: messageId, callback_data: data });
    const id = body.callback_query && body.callback_query.id;
    if (id) {
      state.pendingPress.set(id, btn);
      setTimeout(() => {
        if (state.pendingPress.get(id) === btn) {
          btn.classList.remove("loading");
          state.pendingPress.delete(id);
        }
      }, 15000);
    }
  } catch (err) {
    btn.classList.remove("loading");
    toast(tr("pressFailed") + err.message);
  }
}

function setStars(stars) {
  state.stars = stars;
  $("stars-count").textContent = String(stars);
  $("stars-btn").dataset.stars = String(stars);
}

async function refreshStars() {
  try {
    const body = await api(`/_emu/stars?user_id=${state.user.id}`);
    setStars(body.stars);
  } catch (_) { /* the poll brings it with the chat */ }
}

function rerender(messageId) {
  const m = state.records.get(messageId);
  if (m) renderRecord(m);
}

// ⭐ Pay: the emulator does what Telegram does — a pre_checkout_query to the bot, up to 10 s
// for its answer, then the Stars taken and the user's successful_payment message. The answer
// here says how it went; the paid state itself comes back with the invoice message.
async function payInvoice(messageId) {
  if (state.paying.has(messageId)) return;
  state.paying.add(messageId);
  state.invoiceNotes.set(messageId, { kind: "pending", text: tr("paying") });
  rerender(messageId);
  let note = null;
  try {
    const body = await postJson("/_emu/pay", { message_id: messageId });
    if (typeof body.stars === "number") setStars(body.stars);
    if (body.ok) note = { kind: "ok", text: tr("paid") };
    else if (body.error_message) note = { kind: "error", text: body.error_message };
    else if (body.error === "not enough stars") {
      note = { kind: "error", text: tr("notEnoughStars", body.stars) };
    } else if (/not answered/.test(body.error || "")) note = { kind: "error", text: tr("noAnswer") };
    else note = { kind: "error", text: tr("payFailed") + (body.error || "?") };
  } catch (err) {
    note = { kind: "error", text: tr("payFailed") + err.message };
  }
  state.paying.delete(messageId);
  state.invoiceNotes.set(messageId, note);
  rerender(messageId);
}

async function addStars(e) {
  e.preventDefault();
  const amount = Number($("stars-amount").value);
  if (!Number.isInteger(amount) || amount < 1) {
    toast(tr("starsFailed") + $("stars-amount").value);
    return;
  }
  try {
    const body = await postJson("/_emu/stars", { add: amount });
    setStars(body.stars);
    $("stars-box").hidden = true;
    toast(tr("starsAdded", amount));
  } catch (err) {
    toast(tr("starsFailed") + err.message);
  }
}

async function submit() {
  const textEl = $("text");
  const text = textEl.value;
  const files = state.files.slice();
  const asDocument = $("as-document").checked;
  if (!files.length && !text.trim()) return;
  $("send").disabled = true;
  try {
    if (files.length) {
      await sendFiles(files, text.trim(), asDocument);
      clearFiles();
    } else {
      await sendText(text);
    }
    textEl.value = "";
    autoGrow();
  } catch (err) {
    toast(tr("sendFailed") + err.message);
  } finally {
    $("send").disabled = false;
    textEl.focus();
    scrollToBottom(true);
  }
}

// --------------------------------------------------------------- attachments

function addFiles(fileList) {
  const incoming = [...fileList];
  if (!incoming.length) return;
  if (state.files.length + incoming.length > 10) {
    toast(tr("tooManyFiles"));
  }
  state.files = state.files.concat(incoming).slice(0, 10);
  if (incoming.some((f) => !/^image\//.test(f.type || ""))) toast(tr("notImage"));
  renderFiles();
}

function clearFiles() {
  state.files = [];
  $("file-input").value = "";
  $("as-document").checked = false;
  renderFiles();
}

function renderFiles() {
  const box = $("attachments");
  const thumbs = $("thumbs");
  thumbs.innerHTML = "";
  box.hidden = state.files.length === 0;
  $("text").placeholder = state.files.length ? tr("placeholderFiles") : tr("placeholder");
  state.files.forEach((file, index) => {
    const item = document.createElement("div");
    item.className = "thumb";
    item.setAttribute("data-testid", "attachment");
    if (/^image\//.test(file.type || "")) {
      const img = document.createElement("img");
      img.src = URL.createObjectURL(file);
      img.onload = () => URL.revokeObjectURL(img.src);
      item.appendChild(img);
    } else {
      item.textContent = "📄";
    }
    const x = document.createElement("button");
    x.type = "button";
    x.className = "thumb-x";
    x.textContent = "✕";
    x.addEventListener("click", () => {
      state.files.splice(index, 1);
      renderFiles();
    });
    item.appendChild(x);
    thumbs.appendChild(item);
  });
}

function autoGrow() {
  const el = $("text");
  el.style.height = "auto";
  el.style.height = `${Math.min(el.scrollHeight, 160)}px`;
}

function toggleCommands() {
  const box = $("commands");
  if (!box.hidden) { box.hidden = true; return; }
  box.innerHTML = `<div class="commands-title">${escapeHtml(tr("commands"))}</div>`;
  const list = state.commands || [];
  if (!list.length) {
    box.innerHTML += `<div class="commands-empty">${escapeHtml(tr("noCommands"))}</div>`;
  }
  for (const c of list) {
    const b = document.createElement("button");
    b.type = "button";
    b.innerHTML = `<b>/${escapeHtml(c.command)}</b> <span>${escapeHtml(c.description)}</span>`;
    b.addEventListener("click", () => { box.hidden = true; sendText(`/${c.command}`); });
    box.appendChild(b);
  }
  box.hidden = false;
}

// ---------------------------------------------------------------------- boot

function applyLanguage() {
  document.documentElement.lang = state.lang;
  $("empty-text").textContent = tr("empty");
  $("text").placeholder = state.files.length ? tr("placeholderFiles") : tr("placeholder");
  $("as-document-label").textContent = tr("asDocument");
  $("new-user").textContent = tr("newUser");
  $("health-link").textContent = tr("health");
  $("switch-lang").textContent = tr("switchLang");
  $("stars-btn").title = tr("starsTitle");
  $("stars-hint").textContent = tr("starsHint");
  $("who").textContent = tr("who", state.user);
  const badge = tr("badge", state.info);
  $("sandbox-badge").title = badge;
  $("sandbox-badge").textContent = state.info.fal === "fake" ? "песочница · 🎨 фейк" : "песочница";
  if (state.lang === "en") {
    $("sandbox-badge").textContent = state.info.fal === "fake" ? "sandbox · 🎨 fake" : "sandbox";
  }
}

function withParams(changes) {
  const url = new URL(window.location.href);
  for (const [k, v] of Object.entries(changes)) url.searchParams.set(k, v);
  return url.toString();
}

async function boot() {
  const config = await api("/chat/config");
  const params = new URLSearchParams(window.location.search);
  state.info = config.info || {};
  state.user = {
    id: Number(params.get("user")) || config.user.id,
    first_name: params.get("name") || config.user.first_name,
    language: params.get("lang") || config.user.language || "ru",
  };
  state.lang = state.user.language === "en" ? "en" : "ru";
  applyLanguage();
  if (state.info.web_url) {
    $("health-link").href = `${state.info.web_url}/healthz`;
  } else {
    $("health-link").hidden = true;
  }

  $("send").addEventListener("click", submit);
  $("text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  $("text").addEventListener("input", autoGrow);
  $("text").addEventListener("paste", (e) => {
    const files = [...(e.clipboardData && e.clipboardData.files) || []];
    if (files.length) { e.preventDefault(); addFiles(files); }
  });
  $("file-input").addEventListener("change", (e) => addFiles(e.target.files));
  $("clear-files").addEventListener("click", clearFiles);
  $("start-btn").addEventListener("click", () => sendText("/start"));
  $("commands-btn").addEventListener("click", toggleCommands);
  $("modal-ok").addEventListener("click", () => { $("modal").hidden = true; });
  $("menu-btn").addEventListener("click", () => { $("menu").hidden = !$("menu").hidden; });
  $("stars-btn").addEventListener("click", () => {
    $("stars-box").hidden = !$("stars-box").hidden;
    if (!$("stars-box").hidden) $("stars-amount").select();
  });
  $("stars-box").addEventListener("submit", addStars);
  $("new-user").addEventListener("click", () => {
    const id = 100000 + Math.floor(Math.random() * 899999);
    window.location.href = withParams({ user: id });
  });
  $("switch-lang").addEventListener("click", () => {
    window.location.href = withParams({ lang: state.lang === "en" ? "ru" : "en" });
  });
  $("chat").addEventListener("click", (e) => {
    const cmd = e.target.closest("a.cmd");
    if (cmd) { e.preventDefault(); sendText(cmd.dataset.command); }
    const spoiler = e.target.closest(".spoiler");
    if (spoiler) spoiler.classList.add("revealed");
  });
  document.addEventListener("click", (e) => {
    if (!e.target.closest("#menu") && !e.target.closest("#menu-btn")) $("menu").hidden = true;
    if (!e.target.closest("#stars-box") && !e.target.closest("#stars-btn")) {
      $("stars-box").hidden = true;
    }
  });

  const app = $("app");
  const zone = $("dropzone");
  app.addEventListener("dragover", (e) => { e.preventDefault(); zone.hidden = false; });
  zone.addEventListener("dragleave", () => { zone.hidden = true; });
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.hidden = true;
    addFiles(e.dataTransfer.files);
  });

  $("webapp-close").addEventListener("click", closeWebApp);
  botStatusLoop();
  refreshStars();
  refreshMenuButton();
  pollLoop();
  $("text").focus();
}

boot().catch((err) => {
  document.body.textContent = `Chat page failed to start: ${err.message}`;
});
