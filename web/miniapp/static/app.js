// The Mini App's pages: plain DOM, no framework, no build step. Every API call carries the
// init data Telegram gave the page (Authorization: tma <initData>); the server decides who
// the caller is. Launch parameters come from the URL's fragment (#tgWebAppData=…&
// tgWebAppThemeParams=…), where Telegram's clients put them, or from telegram-web-app.js
// when a host loads it; they are kept in sessionStorage for the page's own navigation.
"use strict";
(() => {
  const tg = window.Telegram && window.Telegram.WebApp;
  const page = document.getElementById("page");
  let texts = {};
  let me = null;

  function launch() {
    const params = new URLSearchParams(location.hash.slice(1));
    let data = params.get("tgWebAppData");
    let theme = params.get("tgWebAppThemeParams");
    if (data) {
      sessionStorage.setItem("tgWebAppData", data);
      if (theme) sessionStorage.setItem("tgWebAppThemeParams", theme);
      // The page to open: ?page= of the bot's button (Telegram owns the fragment).
      const first = new URLSearchParams(location.search).get("page") || "balance";
      history.replaceState(null, "", location.pathname + location.search + "#" + first);
    } else {
      data = sessionStorage.getItem("tgWebAppData");
      theme = sessionStorage.getItem("tgWebAppThemeParams");
    }
    if (tg && tg.initData) data = tg.initData;
    let themeParams = tg && tg.themeParams;
    try { if (theme) themeParams = JSON.parse(theme); } catch (e) { /* no theme: system's */ }
    return { data: data || "", theme: themeParams || {} };
  }

  const params = launch();
  for (const [key, value] of Object.entries(params.theme)) {
    if (/^#[0-9a-fA-F]{3,8}$/.test(String(value))) {
      document.documentElement.style.setProperty("--tg-theme-" + key.replace(/_/g, "-"), value);
    }
  }

  // Telegram's bridge (what telegram-web-app.js does): events to the client, and back.
  const waiting = {};
  function postEvent(type, data) {
    const body = JSON.stringify({ eventType: type, eventData: data || {} });
    if (window.TelegramWebviewProxy) {
      window.TelegramWebviewProxy.postEvent(type, JSON.stringify(data || {}));
    } else if (window.external && "notify" in window.external) {
      window.external.notify(body);
    } else if (window.parent !== window) {
      window.parent.postMessage(body, "*");
    }
  }
  function receiveEvent(type, data) {
    if (type === "invoice_closed" && data && waiting[data.slug]) {
      waiting[data.slug](data.status);
      delete waiting[data.slug];
    }
  }
  if (!tg) {
    window.Telegram = window.Telegram || {};
    window.Telegram.WebView = { receiveEvent };
    window.addEventListener("message", (event) => {
      try {
        const message = JSON.parse(event.data);
        receiveEvent(message.eventType, message.eventData);
      } catch (e) { /* not Telegram's */ }
    });
  }
  function openLink(url) {
    if (tg && tg.openLink) return tg.openLink(url);
    if (window.TelegramWebviewProxy || window.parent !== window) {
      return postEvent("web_app_open_link", { url });
    }
    window.open(url, "_blank", "noopener");
  }
  function openInvoice(url, done) {
    if (tg && tg.openInvoice) return tg.openInvoice(url, done);
    const match = url.match(/^https:\/\/t\.me\/(?:\$|invoice\/)(.+)$/);
    if (!match) return done("failed");
    waiting[match[1]] = done;
    postEvent("web_app_open_invoice", { slug: match[1] });
  }

  const T = (key) => texts[key] || key;
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "onclick") node.addEventListener("click", v);
      else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child != null) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  function toast(message) {
    const box = document.getElementById("toast");
    box.textContent = message;
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.hidden = true; }, 4000);
  }
  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16)).join("");
  }
  class Unauthorized extends Error {}
  async function api(path, body) {
    const init = { headers: { Authorization: "tma " + params.data } };
    if (body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch("/app/api/" + path, init);
    if (response.status === 401) throw new Unauthorized();
    const json = await response.json();
    return { status: response.status, json };
  }
  function dateText(iso) {
    return iso ? new Date(iso).toLocaleDateString(me ? me.lang : "ru") : "—";
  }

  // -- the pages --------------------------------------------------------------------------
  async function balance() {
    const { json: b } = await api("balance");
    const nodes = [
      el("p", { class: "hint" }, T("app-balance-rubles")),
      el("p", { class: "big", id: "balance" }, b.balance_text),
      el("p", {}, T("app-balance-free") + ": ", el("b", { id: "free" }, b.free_left)),
    ];
    if (b.subscription) {
      const s = b.subscription;
      nodes.push(el("div", { class: "card", id: "quota" },
        el("h3", {}, s.name),
        el("p", {}, T("app-balance-quota") + ": " + s.units_left + " / " + s.units_per_period),
        el("p", { class: "hint" }, T("app-balance-resets") + ": " + dateText(s.resets_at))));
    }
    if (b.packages.length) {
      nodes.push(el("div", { class: "card", id: "packages" }, el("h3", {}, T("app-balance-packages")),
        ...b.packages.map((p) => el("p", {}, p.name + ": " + p.units_left + " "
          + T("app-balance-ops") + (p.ends_at ? " · " + dateText(p.ends_at) : "")))));
    }
    nodes.push(el("p", { class: "text hint" }, b.lines.join("\n")));
    return nodes;
  }

  async function plans() {
    const { json } = await api("plans");
    if (!json.plans.length) return [el("p", { class: "hint" }, T("app-plans-empty"))];
    return json.plans.map((p) => {
      const key = newKey(); // one purchase per card shown: a repeated click is the same one
      const card = el("div", { class: "card", "data-plan": p.code },
        el("h3", {}, p.name + (p.current ? " · " + T("app-plan-current") : "")),
        el("p", { class: "text" }, p.text));
      const buy = el("button", { class: "buy-balance", onclick: async () => {
        buy.disabled = true;
        buy.textContent = T("app-buying");
        try {
          const { json: r } = await api("plans/" + encodeURIComponent(p.code) + "/buy", { key });
          toast(r.text);
          if (r.status === "bought" || r.status === "scheduled") return show("balance");
        } catch (e) { failed(e); }
        buy.disabled = false;
        buy.textContent = T("app-buy-balance");
      } }, T("app-buy-balance"));
      card.append(buy);
      if (p.stars) {
        card.append(el("button", { class: "buy-stars", onclick: () => pay({ plan: p.code }) },
          T("app-buy-stars") + " · " + p.stars + " ⭐"));
      }
      if (p.card) {
        const cardKey = newKey();
        const byCard = el("button", { class: "buy-card",
          onclick: () => cardPay({ plan: p.code, key: cardKey }, byCard) },
        T("app-buy-card") + " · " + p.price_text + " ₽");
        card.append(byCard);
      }
      return card;
    });
  }

  async function pay(what) {
    try {
      const { status, json } = await api("stars/invoice", what);
      if (status !== 200) return toast(json.text || json.reason || T("app-error"));
      openInvoice(json.link, (result) => {
        toast(result === "paid" ? T("app-paid") : T("app-invoice-closed"));
        if (result === "paid") setTimeout(() => show(current), 1000);
      });
    } catch (e) { failed(e); }
  }

  // A card payment (YooKassa): created by the server, opened with openLink; its id is kept
  // so the page shows it, and its state, when the user comes back.
  async function cardPay(what, button) {
    button.disabled = true;
    toast(T("app-pay-open"));
    try {
      const { status, json } = await api("card/payment", what);
      if (status !== 200) {
        button.disabled = false;
        return toast(json.text || json.reason || T("app-error"));
      }
      sessionStorage.setItem("cardPayment", String(json.payment.id));
      openLink(json.payment.confirmation_url);
      location.hash = "topup";
      if (current === "topup") show("topup");
    } catch (e) { failed(e); }
  }

  async function cardPayment() {
    const id = sessionStorage.getItem("cardPayment");
    if (!id) return null;
    const { status, json } = await api("card/payment/" + encodeURIComponent(id));
    if (status !== 200) {
      sessionStorage.removeItem("cardPayment");
      return null;
    }
    const p = json.payment;
    const box = el("div", { class: "card", id: "payment", "data-state": p.state },
      el("h3", {}, T("app-pay-title") + " · " + p.amount_text + " ₽"),
      el("p", { id: "payment-state" }, p.state_text));
    if (!p.credited && (p.state === "pending" || p.state === "waiting_for_capture")) {
      box.append(el("button", { id: "payment-check", onclick: () => show("topup") },
        T("app-pay-check")));
      if (p.confirmation_url) {
        box.append(el("button", { onclick: () => openLink(p.confirmation_url) },
          T("app-pay-again")));
      }
    } else {
      sessionStorage.removeItem("cardPayment"); // shown once in its final state
    }
    return box;
  }

  async function topup() {
    const nodes = [];
    const waiting = await cardPayment();
    if (waiting) nodes.push(waiting);
    if (me.card) {
      nodes.push(el("h3", {}, T("app-topup-card-title")),
        el("div", {}, ...me.topup_presets.map((rub) => {
          const key = newKey();
          const button = el("button", { class: "card-pack", "data-rub": rub,
            onclick: () => cardPay({ amount_rub: rub, key }, button) }, rub + " ₽");
          return button;
        })));
    }
    if (me.stars) {
      nodes.push(el("h3", {}, T("app-topup-stars")),
        el("div", {}, ...me.stars_packs.map((p) => el("button", {
          class: "pack", "data-stars": p.stars, onclick: () => pay({ pack: p.stars }),
        }, p.stars + " ⭐ → " + p.amount_text + " ₽"))));
    }
    if (!me.card && !me.stars) nodes.push(el("p", { class: "hint" }, T("app-topup-none")));
    return nodes;
  }

  // A list that loads its next page when its end scrolls into view.
  function endless(path, query, render, emptyText) {
    const list = el("ul", { class: "list" });
    const end = el("p", { class: "hint" }, T("app-loading"));
    let next = null;
    let busy = false;
    async function more() {
      if (busy) return;
      busy = true;
      const q = new URLSearchParams(query);
      if (next) q.set("before", next);
      try {
        const { json } = await api(path + "?" + q);
        json.items.forEach((item) => list.append(render(item)));
        next = json.next;
        if (!next) {
          observer.disconnect();
          end.textContent = list.children.length ? "" : emptyText;
        }
      } catch (e) { observer.disconnect(); if (list.isConnected) failed(e); }
      busy = false;
    }
    const observer = new IntersectionObserver((seen) => { if (seen[0].isIntersecting) more(); });
    observer.observe(end);
    return [list, end];
  }

  async function historyPage() {
    const select = el("select", { id: "kind" }, el("option", { value: "" }, T("app-history-all")),
      ...me.kinds.map((k) => el("option", { value: k }, T("app-kind-" + k))));
    const box = el("div", {});
    const load = () => box.replaceChildren(...endless("history",
      select.value ? { kind: select.value } : {},
      (i) => el("li", { "data-kind": i.kind }, el("div", { class: "when" }, i.when), i.text),
      T("app-history-empty")));
    select.addEventListener("change", load);
    load();
    return [select, box];
  }

  async function operationsPage() {
    return endless("operations", {}, (o) => el("li", { "data-status": o.status },
      el("div", { class: "when" }, o.when + " · " + o.status_text),
      o.type_text + " — " + o.cost_text,
      o.refund_reason ? el("div", { class: "hint" }, T("app-op-reason") + ": " + o.refund_reason)
        : null,
      o.chat_link ? el("a", { class: "chat-link", href: o.chat_link, onclick: (event) => {
        // Inside Telegram: its own way to a t.me link (the Mini App stays where it is).
        if (tg && tg.openTelegramLink) { event.preventDefault(); tg.openTelegramLink(o.chat_link); }
      } }, T("app-op-open")) : null), T("app-ops-empty"));
  }

  const pages = { balance, plans, topup, history: historyPage, operations: operationsPage };
  let current = "balance";
  let shown = 0; // show() calls so far: a page still loading when another was chosen is dropped

  function failed(error) {
    page.replaceChildren(el("p", { class: "hint", id: "error" },
      error instanceof Unauthorized ? T("app-unauthorized") : T("app-error")));
  }

  async function show(name) {
    const mine = ++shown;
    const wanted = pages[name] ? name : "balance";
    current = wanted;
    for (const a of document.querySelectorAll("#tabs a")) {
      a.classList.toggle("on", a.dataset.page === wanted);
    }
    try {
      const nodes = await pages[wanted]();
      if (mine !== shown) return; // another tab was chosen while this one loaded
      page.replaceChildren(...nodes);
      page.dataset.page = wanted;
    } catch (e) { if (mine === shown) failed(e); }
  }

  async function start() {
    try {
      ({ json: me } = await api("me"));
    } catch (e) { return failed(e); }
    texts = me.texts;
    document.documentElement.lang = me.lang;
    document.title = T("app-title");
    for (const node of document.querySelectorAll("[data-text]")) node.textContent = T(node.dataset.text);
    window.addEventListener("hashchange", () => show(location.hash.slice(1)));
    // Back from the payment page: its state, asked anew.
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && current === "topup" && sessionStorage.getItem("cardPayment")) {
        show("topup");
      }
    });
    await show(location.hash.slice(1));
    postEvent("web_app_ready");
  }
  start();
})();
