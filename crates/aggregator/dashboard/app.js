// N-Defender operator dashboard: a plain script (no framework, no third-party code),
// the reference client of the aggregator's contract. State changes are applied as
// events arrive; the DOM and the map are redrawn at most once per animation frame
// (the contact list at most every 250 ms), so 100 events/s never queue up work.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const SEV = { critical: 0, high: 1, medium: 2, low: 3, unknown: 4 };
  const KIND = { REMOTE_ID: "RID", RF: "RF", FPV: "FPV" };
  const TRAIL = 30;
  const MAX_ROWS = 200;
  const STALE_MS = 6000;

  // ---- session ------------------------------------------------------------
  // The token lives in sessionStorage only (gone with the tab); preferences
  // (theme, mute) are not secrets and persist.
  const session = {
    token: sessionStorage.getItem("ndf.token") || "",
    mode: "bearer", // "bearer" (role tokens) or "apikey" (server.api_key, before issue 13)
    role: "viewer",
    name: "",
  };
  function authHeaders() {
    if (!session.token) return {};
    return session.mode === "apikey"
      ? { "X-API-Key": session.token }
      : { Authorization: "Bearer " + session.token };
  }
  function wsAuth() {
    if (!session.token) return "";
    const k = session.mode === "apikey" ? "api_key" : "access_token";
    return "&" + k + "=" + encodeURIComponent(session.token);
  }
  async function api(path, opts) {
    const o = Object.assign({ headers: {} }, opts || {});
    o.headers = Object.assign({}, o.headers, authHeaders());
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), 15000);
    o.signal = ctl.signal;
    try {
      const r = await fetch(path, o);
      let body = null;
      try { body = await r.json(); } catch (_) { body = null; }
      return { status: r.status, body };
    } finally {
      clearTimeout(t);
    }
  }
  function errCode(body) {
    if (!body) return "";
    return body.code || body.detail || (body.error && (body.error.code || body.error)) || "";
  }

  // Who is this? whoami answers with role tokens (issue 13); a 404 means the server
  // predates them: then the only credential is server.api_key and a valid one is admin.
  async function identify() {
    let r = await api("/api/v1/auth/whoami");
    if (r.status === 200 && r.body) {
      session.mode = "bearer";
      session.role = r.body.role || "viewer";
      session.name = r.body.name || "";
      return true;
    }
    if (r.status === 401 && /api_key/.test(String(errCode(r.body))) && session.mode !== "apikey") {
      session.mode = "apikey";
      r = await api("/api/v1/auth/whoami");
    }
    if (r.status === 404) {
      session.mode = session.token ? "apikey" : session.mode;
      const s = await api("/api/v1/health");
      if (s.status >= 500 || s.status === 0) throw new Error("unreachable");
      const st = await api("/api/v1/status");
      if (st.status === 401) return askLogin("This kit needs its API key (server.api_key).");
      session.role = "admin";
      session.name = session.token ? "api key" : "open (no key set)";
      return true;
    }
    if (r.status === 401) {
      return askLogin(session.token ? "Unauthorized: this token is not valid (or has been revoked)." : "Sign in with your access token.");
    }
    if (r.status === 403) return askLogin("Forbidden: this token's role may not use the dashboard.");
    throw new Error("whoami answered " + r.status);
  }
  function askLogin(msg) {
    $("login-msg").textContent = msg;
    $("login").hidden = false;
    $("token").value = "";
    $("token").focus();
    return false;
  }
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    session.token = $("token").value.trim();
    session.mode = "bearer";
    sessionStorage.setItem("ndf.token", session.token);
    $("login").hidden = true;
    unlockAudio();
    start();
  });
  $("user").addEventListener("click", () => {
    if (!confirm("Sign out of this dashboard?")) return;
    sessionStorage.removeItem("ndf.token");
    session.token = "";
    stopWs();
    askLogin("Signed out.");
  });

  // ---- preferences --------------------------------------------------------
  let muted = localStorage.getItem("ndf.mute") === "1";
  function setTheme(t) {
    document.body.dataset.theme = t;
    $("theme").textContent = t === "night" ? "Day" : "Night";
    $("theme").setAttribute("aria-label", "Switch to " + (t === "night" ? "day" : "night") + " theme");
    localStorage.setItem("ndf.theme", t);
    dirty.map = true;
    schedule();
  }
  function setMute(m) {
    muted = m;
    $("mute").textContent = m ? "Muted" : "Sound";
    $("mute").setAttribute("aria-pressed", String(m));
    localStorage.setItem("ndf.mute", m ? "1" : "0");
  }
  $("theme").addEventListener("click", () => setTheme(document.body.dataset.theme === "night" ? "day" : "night"));
  $("mute").addEventListener("click", () => { unlockAudio(); setMute(!muted); });

  // ---- sound --------------------------------------------------------------
  let audio = null;
  function unlockAudio() {
    try {
      if (!audio) audio = new AudioContext();
      if (audio.state === "suspended") audio.resume();
    } catch (_) { audio = null; }
  }
  let lastBeep = 0;
  function beep() {
    if (muted || !audio || audio.state !== "running") return;
    const now = performance.now();
    if (now - lastBeep < 3000) return;
    lastBeep = now;
    for (let i = 0; i < 2; i++) {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.frequency.value = 1200;
      g.gain.value = 0.15;
      o.connect(g).connect(audio.destination);
      const t = audio.currentTime + i * 0.22;
      o.start(t);
      o.stop(t + 0.14);
    }
  }
  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("keydown", unlockAudio, { once: true });

  // ---- state --------------------------------------------------------------
  const st = {
    snap: {},
    contacts: new Map(),
    trails: new Map(),
    lastSeq: 0,
    lastMsg: 0,
    connected: false,
    resyncs: 0,
    jumps: 0,
    gaps: 0,
    events: 0,
    selected: null,
  };
  // Exposed for the browser test and the benchmark: counters, never behaviour.
  window.ndf = { st, session };

  const dirty = { list: true, map: true, rf: true, kit: true, bar: true };
  let frame = 0;
  let lastList = 0;
  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }

  function setContact(c) {
    const old = st.contacts.get(c.id);
    const merged = old ? Object.assign({}, old, c) : c;
    st.contacts.set(c.id, merged);
    if (typeof merged.lat === "number" && typeof merged.lon === "number") {
      let t = st.trails.get(c.id);
      if (!t) st.trails.set(c.id, (t = []));
      const p = t[t.length - 1];
      if (!p || p[0] !== merged.lat || p[1] !== merged.lon) {
        t.push([merged.lat, merged.lon]);
        if (t.length > TRAIL) t.shift();
      }
    }
    return merged;
  }
  function dropContact(id) {
    st.contacts.delete(id);
    st.trails.delete(id);
    if (st.selected === id) st.selected = null;
  }

  function applySnapshot(s) {
    st.snap = s;
    const seen = new Set();
    for (const c of s.contacts || []) {
      seen.add(c.id);
      setContact(c);
    }
    for (const id of Array.from(st.contacts.keys())) if (!seen.has(id)) dropContact(id);
    dirty.list = dirty.map = dirty.rf = dirty.kit = dirty.bar = true;
  }

  const newSince = { REMOTE_ID: 0, RF: 0, FPV: 0, last: "" };
  function alertNew(c) {
    const k = c.type || "RF";
    newSince[k] = (newSince[k] || 0) + 1;
    newSince.last = describe(c);
    const parts = [];
    if (newSince.REMOTE_ID) parts.push(newSince.REMOTE_ID + " RemoteID");
    if (newSince.RF) parts.push(newSince.RF + " RF");
    if (newSince.FPV) parts.push(newSince.FPV + " FPV");
    $("alert-text").textContent = "New contact: " + parts.join(", ") + " — latest " + newSince.last;
    $("alert").hidden = false;
    beep();
  }
  function ackAlert() {
    $("alert").hidden = true;
    newSince.REMOTE_ID = newSince.RF = newSince.FPV = 0;
  }
  $("alert-ack").addEventListener("click", ackAlert);

  function onEnvelope(env) {
    st.events++;
    st.lastMsg = Date.now();
    if (typeof env.seq === "number") {
      // Broadcast events are numbered without holes; a greeting or resync set carries
      // the seq it already reflects. A jump elsewhere means lost events: re-fetch.
      if (st.lastSeq && env.seq > st.lastSeq + 1 && env.type !== "SYSTEM_UPDATE") {
        st.gaps += env.seq - st.lastSeq - 1;
        refetchSnapshot();
      }
      // A SYSTEM_UPDATE past a hole is the hub's resync set (this client fell behind and
      // its queue was dropped) or a greeting after an unusable since: counted, not lost.
      if (st.lastSeq && env.seq > st.lastSeq + 1 && env.type === "SYSTEM_UPDATE") st.jumps++;
      if (env.seq > st.lastSeq) st.lastSeq = env.seq;
    }
    const d = env.data || {};
    switch (env.type) {
      case "SYSTEM_UPDATE":
        applySnapshot(d);
        break;
      case "CONTACT_NEW":
      case "CONTACT_UPDATE": {
        const c = setContact(Object.assign({ type: "REMOTE_ID", severity: "unknown" }, d));
        if (env.type === "CONTACT_NEW") alertNew(c);
        dirty.list = dirty.map = true;
        break;
      }
      case "RF_CONTACT_NEW":
      case "RF_CONTACT_UPDATE": {
        const c = setContact(Object.assign({ type: "RF", source: "antsdr", severity: "unknown" }, st.contacts.get(d.id) || {}, d));
        if (env.type === "RF_CONTACT_NEW") alertNew(c);
        dirty.list = dirty.rf = true;
        break;
      }
      case "CONTACT_LOST":
      case "RF_CONTACT_LOST":
        dropContact(d.id);
        dirty.list = dirty.map = dirty.rf = true;
        break;
      case "ESP32_TELEMETRY": {
        const v = (st.snap.vrx = st.snap.vrx || {});
        if (Array.isArray(d.vrx)) v.vrx = d.vrx;
        if (typeof d.sel === "number") v.selected = d.sel;
        if (d.video && typeof d.video.selected === "number") st.snap.video = Object.assign({}, st.snap.video, { selected: d.video.selected });
        dirty.rf = true;
        break;
      }
      case "COMMAND_ACK":
        onAck(d);
        break;
      default:
        break;
    }
    dirty.bar = true;
    schedule();
  }

  let refetching = false;
  async function refetchSnapshot() {
    if (refetching) return;
    refetching = true;
    try {
      const r = await api("/api/v1/status");
      if (r.status === 200 && r.body) applySnapshot(r.body);
      st.resyncs++;
      schedule();
    } catch (_) {
      /* the next reconnect's greeting brings the snapshot */
    } finally {
      refetching = false;
    }
  }

  // ---- WebSocket ------------------------------------------------------------
  let ws = null;
  let backoff = 500;
  let retry = 0;
  let stopped = false;
  function connect() {
    if (stopped) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = st.lastSeq ? "?since=" + st.lastSeq : "?seq=1";
    const sock = new WebSocket(proto + "//" + location.host + "/api/v1/ws" + q + wsAuth());
    ws = sock;
    sock.onopen = () => {
      st.connected = true;
      backoff = 500;
      dirty.bar = true;
      schedule();
    };
    sock.onmessage = (m) => {
      let env;
      try { env = JSON.parse(m.data); } catch (_) { return; }
      onEnvelope(env);
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      st.connected = false;
      dirty.bar = true;
      schedule();
      if (stopped) return;
      retry = setTimeout(async () => {
        // A refused upgrade looks like any other failure: ask REST why.
        try {
          const r = await api("/api/v1/health");
          if (r.status === 200) {
            const who = await identify();
            if (!who) { stopWs(); return; }
            applyRole();
          }
        } catch (_) { /* still down: try again */ }
        connect();
      }, backoff + Math.random() * 250);
      backoff = Math.min(backoff * 2, 5000);
    };
    sock.onerror = () => {};
  }
  function stopWs() {
    stopped = true;
    clearTimeout(retry);
    if (ws) { const s = ws; ws = null; s.close(); }
    st.connected = false;
    dirty.bar = true;
    schedule();
  }

  // ---- commands -------------------------------------------------------------
  const pending = new Map(); // command_id -> label
  const acks = new Map(); // command_id -> ack data (an ack may beat the HTTP answer)
  function idOfAck(d) { return d.id || d.command_id || ""; }
  function showResult(text, cls) {
    const el = $("cmd-result");
    el.textContent = text;
    el.className = "cmd-result " + (cls || "");
  }
  function ackText(label, a) {
    const ok = a.ok === true;
    const why = a.err || a.reason || "";
    return [label + ": " + (ok ? "done (acknowledged)" : "failed" + (why ? " — " + why : "")), ok ? "good" : "bad"];
  }
  function onAck(d) {
    const id = idOfAck(d);
    if (!id) return;
    if (pending.has(id)) {
      const [t, c] = ackText(pending.get(id), d);
      pending.delete(id);
      showResult(t, c);
    } else {
      acks.set(id, d);
      if (acks.size > 64) acks.delete(acks.keys().next().value);
    }
  }
  const EXPLAIN = {
    unauthorized: "not signed in (401): sign in again",
    invalid_api_key: "the key was refused (401): sign in again",
    forbidden_role: "your role may not send commands (403)",
    esp32_not_connected: "the ESP32 panel is not connected",
    esp32_timeout: "the ESP32 panel did not answer",
    busy: "the panel is busy; try again",
    rate_limited: "too many commands; wait a moment",
  };
  async function command(route, body, label) {
    if (session.role === "viewer") { showResult("Viewers cannot send commands.", "bad"); return; }
    showResult(label + ": sending…", "");
    let r;
    try {
      r = await api("/api/v1/" + route, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ payload: body }),
      });
    } catch (e) {
      showResult(label + ": no answer from the kit", "bad");
      return;
    }
    if (r.status === 200 && r.body && r.body.command_id) {
      const id = r.body.command_id;
      if (acks.has(id)) {
        const [t, c] = ackText(label, acks.get(id));
        acks.delete(id);
        showResult(t, c);
      } else {
        pending.set(id, label);
        showResult(label + ": accepted, waiting for the ack…", "");
        setTimeout(() => {
          if (pending.delete(id)) showResult(label + ": accepted, no ack within 10 s", "bad");
        }, 10000);
      }
      return;
    }
    const code = String(errCode(r.body) || r.status);
    showResult(label + ": " + (EXPLAIN[code] || "refused (" + code + ")"), "bad");
    if (r.status === 401) identify().then(applyRole);
  }
  $("scan-start").addEventListener("click", () => command("scan/start", {}, "Start scan"));
  $("scan-stop").addEventListener("click", () => command("scan/stop", {}, "Stop scan"));
  function applyRole() {
    document.body.classList.toggle("viewer", session.role === "viewer");
    $("user").textContent = session.role;
    $("user").title = "Signed in as " + (session.name ? session.name + ", " : "") + session.role + ". Click to sign out.";
    $("user").setAttribute("aria-label", "Signed in as " + session.role + "; sign out");
    dirty.rf = true;
    schedule();
  }

  // ---- geometry -------------------------------------------------------------
  const R = 6371008.8;
  const rad = (d) => (d * Math.PI) / 180;
  function distBearing(lat1, lon1, lat2, lon2) {
    const p1 = rad(lat1), p2 = rad(lat2), dl = rad(lon2 - lon1);
    const a = Math.sin((p2 - p1) / 2) ** 2 + Math.cos(p1) * Math.cos(p2) * Math.sin(dl / 2) ** 2;
    const d = 2 * R * Math.asin(Math.min(1, Math.sqrt(a)));
    const y = Math.sin(dl) * Math.cos(p2);
    const x = Math.cos(p1) * Math.sin(p2) - Math.sin(p1) * Math.cos(p2) * Math.cos(dl);
    const b = ((Math.atan2(y, x) * 180) / Math.PI + 360) % 360;
    return [d, b];
  }
  const COMPASS = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];
  function fmtDist(m) { return m < 1000 ? Math.round(m) + " m" : (m / 1000).toFixed(m < 10000 ? 2 : 1) + " km"; }
  function fmtBearing(b) { return String(Math.round(b)).padStart(3, "0") + "° " + COMPASS[Math.round(b / 45) % 8]; }
  function fmtAge(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min" : Math.floor(s / 3600) + " h";
  }
  function mhz(hz) { return typeof hz === "number" ? (hz / 1e6).toFixed(hz % 1e6 ? 1 : 0) + " MHz" : "—"; }

  // The map's centre: the kit's GPS fix, else the first contact with a position.
  function origin() {
    const g = st.snap.gps || {};
    if ((g.fix === "FIX_2D" || g.fix === "FIX_3D") && typeof g.latitude === "number") return { lat: g.latitude, lon: g.longitude, kit: true };
    if (!origin.first || !st.contacts.has(origin.first.id)) {
      origin.first = null;
      for (const c of st.contacts.values()) if (typeof c.lat === "number") { origin.first = { id: c.id, lat: c.lat, lon: c.lon }; break; }
    }
    return origin.first ? { lat: origin.first.lat, lon: origin.first.lon, kit: false } : null;
  }

  function describe(c) {
    if (c.type === "RF") return mhz(c.freq_hz) + " " + (c.band || "");
    if (c.type === "FPV") return "VRX " + c.vrx_id + " " + mhz(c.freq_hz);
    return c.id + (c.model ? " (" + c.model + ")" : "");
  }
  function where(c, o) {
    if (!o || typeof c.lat !== "number") return "";
    const [d, b] = distBearing(o.lat, o.lon, c.lat, c.lon);
    return fmtDist(d) + " " + fmtBearing(b);
  }

  // ---- contact list -------------------------------------------------------------
  function sorted() {
    return Array.from(st.contacts.values()).sort(
      (a, b) => (SEV[a.severity] ?? 4) - (SEV[b.severity] ?? 4) || (b.last_seen_ts || 0) - (a.last_seen_ts || 0)
    );
  }
  const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => "&#" + ch.charCodeAt(0) + ";");
  function detail(c, o, now) {
    const p = [];
    if (c.type === "REMOTE_ID") {
      if (c.model) p.push(c.model);
      if (c.operator_id) p.push("op " + c.operator_id);
      if (typeof c.altitude_m === "number") p.push(Math.round(c.altitude_m) + " m alt");
      if (typeof c.speed_m_s === "number") p.push(c.speed_m_s.toFixed(1) + " m/s");
      const w = where(c, o);
      if (w) p.push(w);
    } else if (c.type === "RF") {
      p.push(mhz(c.freq_hz));
      if (c.band) p.push(c.band);
      const cls = c.features && Array.isArray(c.features.class_path) ? c.features.class_path.join("/") : c.bandwidth_class;
      if (cls) p.push(cls);
      if (typeof c.confidence === "number") p.push(Math.round(c.confidence * 100) + "%");
      if (typeof c.snr_db === "number") p.push("SNR " + Math.round(c.snr_db) + " dB");
    } else if (c.type === "FPV") {
      p.push("VRX " + c.vrx_id, mhz(c.freq_hz), "RSSI " + c.rssi_raw);
    }
    return p.join(" · ");
  }
  function renderList(now) {
    // A hidden panel costs nothing but its count; showTab redraws it when it opens.
    if ($("tab-contacts").hidden) { $("n-contacts").textContent = String(st.contacts.size); return; }
    const o = origin();
    const list = sorted();
    let html = "";
    // The most severe and most recent 200 are listed; the rest are counted.
    for (const c of list.slice(0, MAX_ROWS)) {
      const sev = SEV[c.severity] === undefined ? "unknown" : c.severity;
      html +=
        '<li class="c sev-' + sev + (st.selected === c.id ? " sel" : "") + '" tabindex="0" data-id="' + esc(c.id) + '">' +
        '<div class="top"><span class="kind">' + (KIND[c.type] || esc(c.type || "?")) + '</span><span class="cid">' + esc(c.id) +
        '</span><span class="sev">' + sev + '</span><span class="age">' + fmtAge(now - (c.last_seen_ts || now)) + "</span></div>" +
        '<div class="sub">' + esc(detail(c, o, now)) + "</div></li>";
    }
    const el = $("contacts");
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.id : null;
    el.innerHTML = html;
    if (focused) {
      const f = el.querySelector('[data-id="' + CSS.escape(focused) + '"]');
      if (f) f.focus();
    }
    $("contacts-empty").hidden = list.length > 0 && list.length <= MAX_ROWS;
    if (list.length > MAX_ROWS) $("contacts-empty").textContent = "+ " + (list.length - MAX_ROWS) + " more, less severe or older";
    else $("contacts-empty").textContent = "No contacts.";
    $("n-contacts").textContent = String(list.length);
  }
  function pick(id) {
    st.selected = st.selected === id ? null : id;
    dirty.list = dirty.map = true;
    lastList = 0;
    schedule();
  }
  $("contacts").addEventListener("click", (e) => {
    const li = e.target.closest("li[data-id]");
    if (li) pick(li.dataset.id);
  });
  $("contacts").addEventListener("keydown", (e) => {
    const li = e.target.closest("li[data-id]");
    if (!li) return;
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(li.dataset.id); }
    if (e.key === "ArrowDown" && li.nextElementSibling) { e.preventDefault(); li.nextElementSibling.focus(); }
    if (e.key === "ArrowUp" && li.previousElementSibling) { e.preventDefault(); li.previousElementSibling.focus(); }
  });

  // ---- RF / VRX panel ---------------------------------------------------------
  function renderRf(now) {
    const v = st.snap.vrx || {};
    const rx = Array.isArray(v.vrx) ? v.vrx : [];
    const selected = (st.snap.video && st.snap.video.selected) || v.selected;
    const box = $("vrx");
    // Cards are kept (inputs keep what the operator is typing); only their text changes.
    for (const r of rx) {
      let card = $("vrx-" + r.id);
      if (!card) {
        card = document.createElement("div");
        card.className = "vrx";
        card.id = "vrx-" + r.id;
        card.innerHTML =
          '<div class="head"><span class="name">VRX ' + r.id + '</span><span class="freq"></span><span class="vid"></span></div>' +
          '<div class="bar" aria-hidden="true"><div></div></div><div class="rssi muted"></div>' +
          '<div class="row"><input type="number" inputmode="decimal" min="1" max="6500" step="1" aria-label="VRX ' + r.id + ' frequency in MHz" placeholder="MHz">' +
          '<button type="button" class="tune cmd">Tune</button><button type="button" class="select cmd">Show video</button></div>';
        card.querySelector(".tune").addEventListener("click", () => {
          const inp = card.querySelector("input");
          const f = parseFloat(inp.value);
          if (!(f >= 1 && f <= 6500)) { showResult("VRX " + r.id + ": enter a frequency in MHz (1–6500)", "bad"); inp.focus(); return; }
          command("vrx/tune", { vrx_id: r.id, freq_hz: Math.round(f * 1e6) }, "Tune VRX " + r.id + " to " + f + " MHz");
        });
        card.querySelector("input").addEventListener("keydown", (e) => { if (e.key === "Enter") card.querySelector(".tune").click(); });
        card.querySelector(".select").addEventListener("click", () => command("video/select", { ch: r.id }, "Video from VRX " + r.id));
        box.appendChild(card);
      }
      card.querySelector(".freq").textContent = mhz(r.freq_hz);
      card.classList.toggle("selected", selected === r.id);
      card.querySelector(".vid").textContent = selected === r.id ? "VIDEO" : "";
      // rssi_raw is the 12-bit ADC mean (0..4095), uncalibrated: shown raw, bar to scale.
      const pct = Math.max(0, Math.min(100, ((r.rssi_raw || 0) / 4095) * 100));
      card.querySelector(".bar > div").style.width = pct.toFixed(0) + "%";
      card.querySelector(".rssi").textContent = "RSSI " + (r.rssi_raw ?? "—");
    }
    $("vrx-none").hidden = rx.length > 0;
    $("vrx-none").textContent = st.snap.esp32 && st.snap.esp32.connected ? "No receiver data yet." : "ESP32 panel not connected: no receivers.";
    const ss = v.scan_state || "idle";
    $("scan-state").textContent = ss;
    $("scan-state").className = "pill " + (ss === "scanning" ? "warn" : "");

    const bands = new Map();
    for (const c of st.contacts.values()) {
      if (c.type !== "RF") continue;
      const b = c.band || "other";
      if (!bands.has(b)) bands.set(b, []);
      bands.get(b).push(c);
    }
    let n = 0;
    for (const list of bands.values()) n += list.length;
    $("n-rf").textContent = String(n);
    if ($("tab-rf").hidden) return;
    let html = "";
    for (const b of Array.from(bands.keys()).sort()) {
      const cs = bands.get(b).sort((x, y) => (x.freq_hz || 0) - (y.freq_hz || 0));
      html += '<div class="band"><h3>' + esc(b) + " · " + cs.length + "</h3>";
      for (const c of cs) {
        const sev = SEV[c.severity] === undefined ? "unknown" : c.severity;
        html += '<div class="c sev-' + sev + '" data-rf="' + esc(c.id) + '"><div class="top"><span class="cid">' + mhz(c.freq_hz) +
          '</span><span class="sev">' + sev + '</span><span class="age">' + fmtAge(now - (c.last_seen_ts || now)) + '</span></div><div class="sub">' +
          esc(detail(c, null, now)) + "</div></div>";
      }
      html += "</div>";
    }
    $("bands").innerHTML = html || '<p class="muted">No RF contacts.</p>';
  }

  // ---- kit panel ---------------------------------------------------------------
  function kitItem(title, value, detailText, state, wide) {
    return '<div class="k ' + (state || "") + (wide ? " wide" : "") + '"><h3>' + esc(title) + '</h3><div class="v">' + esc(value) +
      '</div><div class="d">' + esc(detailText || "") + "</div></div>";
  }
  const cls = (s) => (s === "ok" || s === true ? "good" : s === "degraded" ? "warn" : s === "offline" || s === false ? "bad" : "");
  function reasons(s) {
    const r = [];
    const chk = (name, status, err) => { if (status === "degraded" || status === "offline") r.push(name + " " + status + (err ? " (" + err + ")" : "")); };
    chk("system", (s.system || {}).status, (s.system || {}).last_error);
    chk("power", (s.power || {}).status, (s.power || {}).last_error);
    chk("audio", (s.audio || {}).status, (s.audio || {}).last_error);
    chk("RF scanner", (s.rf || {}).status, (s.rf || {}).last_error);
    chk("RemoteID", (s.remote_id || {}).state, (s.remote_id || {}).last_error);
    if (s.esp32 && s.esp32.connected === false) r.push("ESP32 panel not connected" + (s.esp32.last_error ? " (" + s.esp32.last_error + ")" : ""));
    return r;
  }
  function renderKit() {
    const s = st.snap;
    const sys = s.system || {}, cpu = sys.cpu || {}, ram = sys.ram || {}, root = (sys.storage || {}).root || {};
    const p = s.power || {}, g = s.gps || {}, n = s.network || {}, a = s.audio || {}, e = s.esp32 || {};
    const left = p.time_to_empty_s ? fmtAge(p.time_to_empty_s * 1000) + " left" : p.time_to_full_s ? fmtAge(p.time_to_full_s * 1000) + " to full" : "";
    let h = "";
    h += kitItem("Power", p.soc_percent !== undefined ? p.soc_percent + " %" : "—", [p.state, left, p.pack_voltage_v ? p.pack_voltage_v.toFixed(1) + " V" : ""].filter(Boolean).join(" · ") || p.last_error || p.status, cls(p.status));
    const sats = g.satellites ? g.satellites.in_use + "/" + g.satellites.in_view + " sats" : "";
    h += kitItem("GPS", g.fix ? g.fix.replace("_", " ") : "—", [sats, typeof g.latitude === "number" ? g.latitude.toFixed(5) + ", " + g.longitude.toFixed(5) : "", g.last_error].filter(Boolean).join(" · "), g.fix === "FIX_3D" || g.fix === "FIX_2D" ? "good" : "warn");
    h += kitItem("CPU", typeof cpu.usage_percent === "number" ? Math.round(cpu.usage_percent) + " %" : "—", [typeof cpu.temp_c === "number" ? cpu.temp_c.toFixed(0) + " °C" : "", typeof cpu.load1 === "number" ? "load " + cpu.load1.toFixed(2) : ""].filter(Boolean).join(" · "), cls(sys.status));
    h += kitItem("Memory", ram.total_mb ? Math.round((ram.used_mb / ram.total_mb) * 100) + " %" : "—", ram.total_mb ? ram.used_mb + " / " + ram.total_mb + " MB" : "", cls(sys.status));
    h += kitItem("Disk", root.total_gb ? Math.round((root.used_gb / root.total_gb) * 100) + " %" : "—", root.total_gb ? root.free_gb.toFixed(1) + " GB free" : "", root.total_gb && root.free_gb / root.total_gb < 0.1 ? "warn" : cls(sys.status));
    h += kitItem("Network", n.connected ? n.ssid || "connected" : n.connected === false ? "offline" : "—", [n.ip_v4, n.wifi && typeof n.wifi.rssi_dbm === "number" ? n.wifi.rssi_dbm + " dBm" : ""].filter(Boolean).join(" · "), n.connected ? "good" : n.connected === false ? "warn" : "");
    h += kitItem("Audio", a.muted ? "muted" : typeof a.volume_percent === "number" ? a.volume_percent + " %" : "—", a.last_error || a.status || "", cls(a.status));
    h += kitItem("ESP32 panel", e.connected ? "connected" : e.connected === false ? "not connected" : "—", [e.fw_version, typeof e.rtt_ms === "number" ? e.rtt_ms + " ms" : "", e.last_error].filter(Boolean).join(" · "), cls(e.connected));
    h += kitItem("RF scanner", (s.rf || {}).status || "—", (s.rf || {}).scan_active ? "sweeping" : (s.rf || {}).last_error || "", cls((s.rf || {}).status));
    h += kitItem("RemoteID", (s.remote_id || {}).state || "—", [(s.remote_id || {}).mode, (s.remote_id || {}).last_error].filter(Boolean).join(" · "), cls((s.remote_id || {}).state));
    const svcs = Array.isArray(s.services) ? s.services : [];
    const svcTxt = svcs.map((x) => x.name.replace(/^ndefender-/, "") + ": " + x.active_state).join(" · ");
    const svcBad = svcs.some((x) => x.active_state !== "active");
    h += kitItem("Services", svcs.length ? svcs.filter((x) => x.active_state === "active").length + "/" + svcs.length + " active" : "—", svcTxt, svcs.length ? (svcBad ? "warn" : "good") : "", true);
    $("kit").innerHTML = h;
    const r = reasons(s);
    const el = $("reasons");
    if (s.overall_ok === true) { el.textContent = "All monitored sections OK."; el.className = "good"; }
    else if (s.overall_ok === false) { el.textContent = "Not OK: " + (r.join("; ") || "see sections below"); el.className = "bad"; }
    else { el.textContent = ""; el.className = ""; }
    $("n-kit").textContent = s.overall_ok === false ? "!" : "";
  }

  function renderBar(now) {
    const c = $("conn");
    const age = st.lastMsg ? now - st.lastMsg : Infinity;
    if (st.connected && age < STALE_MS) { c.textContent = "LIVE"; c.className = "pill live"; }
    else if (st.connected) { c.textContent = "STALE " + fmtAge(age); c.className = "pill warn"; }
    else if (st.lastMsg) { c.textContent = "RECONNECTING · data " + fmtAge(age) + " old"; c.className = "pill bad"; }
    else { c.textContent = "CONNECTING"; c.className = "pill warn"; }
    const ok = $("ok");
    const s = st.snap;
    ok.textContent = s.overall_ok === true ? "KIT OK" : s.overall_ok === false ? "NOT OK" : "KIT —";
    ok.title = s.overall_ok === false ? "Kit not OK: " + reasons(s).join("; ") : "";
    ok.className = "pill " + (s.overall_ok === true ? "good" : s.overall_ok === false ? "bad" : "");
  }

  // ---- map ------------------------------------------------------------------------
  const canvas = $("map");
  const view = { mpp: 4, auto: true }; // metres per CSS pixel
  let tilesUrl = null;
  const tileCache = new Map();
  // Read once per theme: getComputedStyle on every frame forces a style recalculation.
  let colorCache = null;
  function colors() {
    if (colorCache && colorCache.theme === document.body.dataset.theme) return colorCache;
    const cs = getComputedStyle(document.body);
    const v = (n) => cs.getPropertyValue(n).trim();
    return colorCache = { theme: document.body.dataset.theme, map: v("--map"), grid: v("--grid"), ring: v("--ring"), fg: v("--fg"), muted: v("--muted"), accent: v("--accent"),
      crit: v("--crit"), high: v("--bad"), medium: v("--warn"), low: v("--low"), unknown: v("--unk"), ok: v("--ok"), hist: v("--hist") };
  }
  function niceRing(m) {
    const steps = [50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000];
    return steps.find((s) => s >= m) || 100000;
  }
  function fit() {
    const o = origin();
    if (!o) return;
    let far = 200;
    for (const c of st.contacts.values()) {
      for (const [la, lo] of [[c.lat, c.lon], [c.operator_lat, c.operator_lon]]) {
        if (typeof la === "number" && typeof lo === "number") far = Math.max(far, distBearing(o.lat, o.lon, la, lo)[0]);
      }
    }
    const r = canvas.getBoundingClientRect();
    view.mpp = (far * 1.15) / Math.max(50, Math.min(r.width, r.height) / 2 - 20);
  }
  function zoom(f) { view.auto = false; view.mpp = Math.min(500, Math.max(0.2, view.mpp * f)); dirty.map = true; schedule(); }
  $("zin").addEventListener("click", () => zoom(1 / 1.5));
  $("zout").addEventListener("click", () => zoom(1.5));
  $("zfit").addEventListener("click", () => { view.auto = true; dirty.map = true; schedule(); });
  canvas.addEventListener("wheel", (e) => { e.preventDefault(); zoom(e.deltaY > 0 ? 1.25 : 0.8); }, { passive: false });
  canvas.addEventListener("keydown", (e) => {
    if (e.key === "+" || e.key === "=") zoom(1 / 1.5);
    else if (e.key === "-") zoom(1.5);
    else if (e.key === "f") { view.auto = true; dirty.map = true; schedule(); }
  });
  canvas.addEventListener("click", (e) => {
    const r = canvas.getBoundingClientRect();
    const x = e.clientX - r.left, y = e.clientY - r.top;
    let best = null, bd = 30;
    for (const [id, p] of lastPositions) {
      const d = Math.hypot(p[0] - x, p[1] - y);
      if (d < bd) { bd = d; best = id; }
    }
    if (best) pick(best);
  });
  const lastPositions = new Map();

  function tile(z, x, y) {
    const key = z + "/" + x + "/" + y;
    let t = tileCache.get(key);
    if (t) return t.img;
    t = { img: null };
    tileCache.set(key, t);
    if (tileCache.size > 256) tileCache.delete(tileCache.keys().next().value);
    const url = tilesUrl.replace("{z}", z).replace("{x}", x).replace("{y}", y);
    const same = url.startsWith("/");
    fetch(url, same ? { headers: authHeaders() } : { mode: "cors", credentials: "omit" })
      .then((r) => (r.ok ? r.blob() : null))
      .then((b) => (b ? createImageBitmap(b) : null))
      .then((img) => { t.img = img; dirty.map = true; schedule(); })
      .catch(() => {});
    return null;
  }
  function drawTiles(ctx, o, w, h, toXY) {
    // Web-mercator zoom whose pixel is closest to the current scale.
    const z = Math.max(0, Math.min(19, Math.round(Math.log2((156543.03 * Math.cos(rad(o.lat))) / view.mpp))));
    const n = 2 ** z;
    const tx = (lon) => ((lon + 180) / 360) * n;
    const ty = (lat) => ((1 - Math.log(Math.tan(rad(lat)) + 1 / Math.cos(rad(lat))) / Math.PI) / 2) * n;
    const lon2 = (x) => (x / n) * 360 - 180;
    const lat2 = (y) => (Math.atan(Math.sinh(Math.PI * (1 - (2 * y) / n))) * 180) / Math.PI;
    const cx = tx(o.lon), cy = ty(o.lat);
    const span = Math.ceil(Math.max(w, h) / 256 / 2) + 1;
    for (let x = Math.floor(cx) - span; x <= Math.floor(cx) + span; x++) {
      for (let y = Math.floor(cy) - span; y <= Math.floor(cy) + span; y++) {
        if (y < 0 || y >= n) continue;
        const img = tile(z, ((x % n) + n) % n, y);
        if (!img) continue;
        const [x0, y0] = toXY(lat2(y), lon2(x));
        const [x1, y1] = toXY(lat2(y + 1), lon2(x + 1));
        ctx.drawImage(img, x0, y0, x1 - x0, y1 - y0);
      }
    }
  }

  function drawMap() {
    const dpr = window.devicePixelRatio || 1;
    const r = canvas.getBoundingClientRect();
    const w = Math.max(1, Math.round(r.width)), h = Math.max(1, Math.round(r.height));
    if (canvas.width !== w * dpr || canvas.height !== h * dpr) { canvas.width = w * dpr; canvas.height = h * dpr; }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const k = colors();
    ctx.fillStyle = k.map;
    ctx.fillRect(0, 0, w, h);
    const ht = hist.track && hist.track.pts.length ? hist.track : null;
    // With no kit fix and no live contact, a history track is the reference.
    const o = origin() || (ht ? { lat: ht.pts[0][0], lon: ht.pts[0][1], kit: false } : null);
    lastPositions.clear();
    if (!o) {
      const cx = w / 2, cy = h / 2;
      ctx.fillStyle = k.muted;
      ctx.font = "16px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.fillText("No GPS fix and no contact with a position yet", cx, cy);
      $("map-info").textContent = "";
      return;
    }
    // A history track on show is centred and fitted; otherwise the kit is the centre.
    let c0 = o;
    if (ht) {
      const hv = histView(w, h);
      c0 = hv;
      if (view.auto) view.mpp = hv.mpp;
    } else if (view.auto) fit();
    const mLat = 110574, mLon = 111320 * Math.cos(rad(o.lat));
    const toXY = (lat, lon) => [w / 2 + ((lon - c0.lon) * mLon) / view.mpp, h / 2 - ((lat - c0.lat) * mLat) / view.mpp];
    const [cx, cy] = toXY(o.lat, o.lon);
    if (tilesUrl) drawTiles(ctx, c0, w, h, toXY);

    // Grid every ring step, rings at 1–4 steps.
    const step = niceRing((Math.min(w, h) / 2) * view.mpp / 4.5);
    const px = step / view.mpp;
    ctx.strokeStyle = k.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let x = ((cx % px) + px) % px; x < w; x += px) { ctx.moveTo(x, 0); ctx.lineTo(x, h); }
    for (let y = ((cy % px) + px) % px; y < h; y += px) { ctx.moveTo(0, y); ctx.lineTo(w, y); }
    ctx.stroke();
    ctx.strokeStyle = k.ring;
    ctx.fillStyle = k.muted;
    ctx.lineWidth = 1.5;
    ctx.font = "14px system-ui, sans-serif";
    ctx.textAlign = "left";
    for (let i = 1; i <= 4; i++) {
      ctx.beginPath();
      ctx.arc(cx, cy, px * i, 0, Math.PI * 2);
      ctx.stroke();
      // Labels on the southern ray, clear of the north arrow and of the kit's label.
      ctx.fillText(fmtDist(step * i), cx + 4, cy + px * i - 4);
    }
    // North arrow.
    ctx.save();
    ctx.translate(w - 34, 44);
    ctx.fillStyle = k.fg;
    ctx.beginPath(); ctx.moveTo(0, -22); ctx.lineTo(9, 6); ctx.lineTo(0, 0); ctx.lineTo(-9, 6); ctx.closePath(); ctx.fill();
    ctx.font = "bold 16px system-ui, sans-serif"; ctx.textAlign = "center"; ctx.fillText("N", 0, 24);
    ctx.restore();
    // The kit (or the reference point).
    ctx.fillStyle = o.kit ? k.accent : k.muted;
    ctx.fillRect(cx - 7, cy - 7, 14, 14);
    ctx.font = "bold 14px system-ui, sans-serif";
    ctx.textAlign = "left";
    ctx.textAlign = "right";
    ctx.fillText(o.kit ? "KIT" : "REF", cx - 10, cy + 20);
    ctx.textAlign = "left";

    drawHistTrack(ctx, k, toXY);

    // RemoteID drones: trail, operator/home, the aircraft pointing along its heading.
    let drones = 0;
    let manyDrones = 0;
    for (const c of st.contacts.values()) if (c.type === "REMOTE_ID" && ++manyDrones > 40) break;
    manyDrones = manyDrones > 40;
    for (const c of st.contacts.values()) {
      if (c.type !== "REMOTE_ID" || typeof c.lat !== "number") continue;
      drones++;
      // Unknown severity (no kit position to judge distance) still has to stand out.
      const col = c.severity && c.severity !== "unknown" && k[c.severity] ? k[c.severity] : k.fg;
      const sel = st.selected === c.id;
      const trail = st.trails.get(c.id) || [];
      if (trail.length > 1) {
        ctx.strokeStyle = col;
        ctx.globalAlpha = 0.55;
        ctx.lineWidth = 2;
        ctx.beginPath();
        trail.forEach((p, i) => { const [x, y] = toXY(p[0], p[1]); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
        ctx.stroke();
        ctx.globalAlpha = 1;
      }
      const [x, y] = toXY(c.lat, c.lon);
      if (typeof c.operator_lat === "number" && typeof c.operator_lon === "number") {
        const [ox, oy] = toXY(c.operator_lat, c.operator_lon);
        ctx.strokeStyle = col;
        ctx.setLineDash([5, 5]);
        ctx.beginPath(); ctx.moveTo(ox, oy); ctx.lineTo(x, y); ctx.stroke();
        ctx.setLineDash([]);
        const t = c.operator_location_type;
        const label = t === "takeoff" ? "HOME" : t === "fixed" ? "OP" : "PILOT";
        ctx.fillStyle = col;
        ctx.beginPath(); ctx.arc(ox, oy, 7, 0, Math.PI * 2); ctx.fill();
        ctx.fillStyle = k.fg;
        ctx.font = "bold 14px system-ui, sans-serif";
        ctx.fillText(label, ox + 10, oy + 5);
      }
      ctx.save();
      ctx.translate(x, y);
      // The reported heading, else the direction of the last leg of the trail.
      let hdg = c.heading_deg;
      if (typeof hdg !== "number" && trail.length > 1) {
        const p = trail[trail.length - 2], q = trail[trail.length - 1];
        hdg = distBearing(p[0], p[1], q[0], q[1])[1];
      }
      ctx.rotate(rad(typeof hdg === "number" ? hdg : 0));
      ctx.fillStyle = col;
      ctx.strokeStyle = k.map;
      ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(0, -14); ctx.lineTo(10, 10); ctx.lineTo(0, 5); ctx.lineTo(-10, 10); ctx.closePath();
      ctx.fill(); ctx.stroke();
      ctx.restore();
      if (sel) { ctx.strokeStyle = k.accent; ctx.lineWidth = 3; ctx.beginPath(); ctx.arc(x, y, 20, 0, Math.PI * 2); ctx.stroke(); }
      // Hundreds of labels are unreadable and slow: past 40 drones only the selected and
      // the high-severity ones are labelled (the list names every one).
      if (manyDrones && !sel && c.severity !== "critical" && c.severity !== "high") { lastPositions.set(c.id, [x, y]); continue; }
      ctx.fillStyle = k.fg;
      ctx.font = (sel ? "bold " : "") + "14px system-ui, sans-serif";
      const short = c.id.replace(/^rid:/, "");
      ctx.fillText(short.length > 14 ? short.slice(0, 13) + "…" : short, x + 14, y - 4);
      if (typeof c.altitude_m === "number") { ctx.fillStyle = k.muted; ctx.fillText(Math.round(c.altitude_m) + " m", x + 14, y + 12); }
      lastPositions.set(c.id, [x, y]);
    }
    const sel = st.selected && st.contacts.get(st.selected);
    $("map-info").textContent =
      (o.kit ? "Centred on the kit (GPS)" : "No GPS fix: centred on the first contact") +
      " · rings " + fmtDist(step) + " · " + drones + " RemoteID" + (sel ? " · " + sel.id + " " + where(sel, o) : "") +
      (ht ? " · history track " + ht.id + " (" + ht.pts.length + " fixes" + (ht.truncated ? ", truncated" : "") + ", dashed)" : "");
  }

  // ---- history (issue 18) ------------------------------------------------------------
  // Past contacts from /api/v1/history/*: a time range, a paged list, an hourly timeline,
  // the selected contact's track drawn on the map in its own style, and exports fetched
  // with the session's credentials (a plain link could not carry the header).
  const HIST_PAGE = 25;
  const hist = { since: 0, until: 0, hours: 24, offset: 0, total: 0, next: null, rows: [], loaded: false, busy: 0,
    id: null, row: null, track: null, exportInfo: null };
  window.ndf.hist = hist;
  const pad2 = (n) => String(n).padStart(2, "0");
  function fmtTime(ms) {
    const d = new Date(ms);
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " + pad2(d.getHours()) + ":" + pad2(d.getMinutes());
  }
  const localInput = (ms) => fmtTime(ms).replace(" ", "T");
  function histPreset(hours) {
    hist.hours = hours;
    hist.until = Date.now();
    hist.since = hist.until - hours * 3600000;
    for (const b of document.querySelectorAll(".preset")) b.setAttribute("aria-pressed", String(Number(b.dataset.hours) === hours));
    $("hist-from").value = localInput(hist.since);
    $("hist-to").value = localInput(hist.until);
    hist.offset = 0;
    loadHistory();
  }
  for (const b of document.querySelectorAll(".preset")) b.addEventListener("click", () => histPreset(Number(b.dataset.hours)));
  $("hist-custom").addEventListener("click", () => {
    const open = $("hist-form").hidden;
    $("hist-form").hidden = !open;
    $("hist-custom").setAttribute("aria-expanded", String(open));
    if (open) $("hist-from").focus();
  });
  $("hist-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const a = new Date($("hist-from").value).getTime(), b = new Date($("hist-to").value).getTime();
    if (!(a < b)) { $("hist-msg").textContent = "Enter a start before the end."; return; }
    hist.since = a; hist.until = b; hist.hours = 0; hist.offset = 0;
    for (const p of document.querySelectorAll(".preset")) p.setAttribute("aria-pressed", "false");
    loadHistory();
  });
  $("hist-prev").addEventListener("click", () => { hist.offset = Math.max(0, hist.offset - HIST_PAGE); loadHistory(); });
  $("hist-next").addEventListener("click", () => { if (hist.next !== null) { hist.offset = hist.next; loadHistory(); } });
  function histFail(r) {
    const code = String(errCode(r.body) || r.status);
    if (r.status === 401) return "Not signed in (401): sign in again.";
    if (r.status === 403) return "Your role may not read the history (403).";
    if (code === "history_unavailable") return "History is off on this kit ([history] enabled = false).";
    return "History not available (" + code + ").";
  }
  async function loadHistory() {
    const my = ++hist.busy;
    hist.loaded = true;
    $("hist-msg").textContent = "Loading…";
    const range = "since=" + hist.since + "&until=" + hist.until;
    let r, s;
    try {
      [r, s] = await Promise.all([
        api("/api/v1/history/contacts?" + range + "&limit=" + HIST_PAGE + "&offset=" + hist.offset),
        api("/api/v1/history/summary?" + range),
      ]);
    } catch (_) {
      if (my === hist.busy) $("hist-msg").textContent = "No answer from the kit.";
      return;
    }
    if (my !== hist.busy) return; // a newer request owns the panel
    if (r.status !== 200 || !r.body) { hist.rows = []; hist.total = 0; hist.next = null; renderHistList(); $("hist-msg").textContent = histFail(r); return; }
    hist.rows = Array.isArray(r.body.contacts) ? r.body.contacts : [];
    hist.total = r.body.total || 0;
    hist.next = typeof r.body.next_offset === "number" ? r.body.next_offset : null;
    renderHistList();
    renderTimeline(s.status === 200 ? s.body : null);
  }
  function histDetail(c) {
    const p = [fmtTime(c.first_seen_ts) + " → " + fmtTime(c.last_seen_ts).slice(11)];
    if (c.type === "REMOTE_ID") {
      if (c.model) p.push(c.model);
      if (c.serial && "rid:" + c.serial !== c.id) p.push("SN " + c.serial);
      if (c.operator_id) p.push("op " + c.operator_id);
      p.push(c.fixes + " fixes");
    } else {
      if (typeof c.freq_hz === "number") p.push(mhz(c.freq_hz));
      if (c.band) p.push(c.band);
      if (c.class) p.push(c.class);
      p.push(c.detections + " detections");
    }
    return p.join(" · ");
  }
  function renderHistList() {
    let html = "";
    for (const c of hist.rows) {
      html += '<li class="c hc' + (hist.id === c.id ? " sel" : "") + '" tabindex="0" data-hid="' + esc(c.id) + '" aria-selected="' + (hist.id === c.id) + '">' +
        '<div class="top"><span class="kind">' + (KIND[c.type] || esc(c.type || "?")) + '</span><span class="cid">' + esc(c.id) + "</span></div>" +
        '<div class="sub">' + esc(histDetail(c)) + "</div></li>";
    }
    $("hist-list").innerHTML = html;
    $("hist-msg").textContent = hist.rows.length ? "" : "No contacts in this range.";
    const a = hist.rows.length ? hist.offset + 1 : 0;
    $("hist-page").textContent = a + "–" + (hist.offset + hist.rows.length) + " of " + hist.total;
    $("hist-prev").disabled = hist.offset === 0;
    $("hist-next").disabled = hist.next === null;
  }
  function renderTimeline(s) {
    const el = $("hist-timeline");
    const hour = 3600000;
    const from = hist.since - (hist.since % hour);
    const n = Math.min(24 * 31, Math.max(1, Math.ceil((hist.until - from) / hour)));
    const per = new Array(n).fill(null).map(() => ({ REMOTE_ID: 0, RF: 0, FPV: 0 }));
    for (const b of (s && s.buckets) || []) {
      const i = Math.floor((b.hour_ts - from) / hour);
      if (i >= 0 && i < n && per[i][b.type] !== undefined) per[i][b.type] += b.contacts;
    }
    const max = Math.max(1, ...per.map((x) => x.REMOTE_ID + x.RF + x.FPV));
    // Built as elements: the page's CSP forbids inline style attributes, not CSSOM.
    const bars = document.createElement("div");
    bars.className = "bars";
    per.forEach((x, i) => {
      const tb = document.createElement("div");
      tb.className = "tb";
      tb.title = fmtTime(from + i * hour) + ": " + x.REMOTE_ID + " RemoteID, " + x.RF + " RF, " + x.FPV + " FPV";
      const rid = document.createElement("div");
      rid.className = "rid";
      rid.style.height = ((x.REMOTE_ID / max) * 100).toFixed(1) + "%";
      const rf = document.createElement("div");
      rf.className = "rf";
      rf.style.height = (((x.RF + x.FPV) / max) * 100).toFixed(1) + "%";
      tb.append(rid, rf);
      bars.appendChild(tb);
    });
    const axis = document.createElement("div");
    axis.className = "axis";
    const l = document.createElement("span"), r = document.createElement("span");
    l.textContent = fmtTime(from);
    r.textContent = fmtTime(hist.until);
    axis.append(l, r);
    el.replaceChildren(bars, axis);
    el.dataset.hours = String(n);
    el.setAttribute("aria-label", "Contacts per hour, " + per.reduce((a, x) => a + x.REMOTE_ID + x.RF + x.FPV, 0) + " contact-hours");
    const tot = ((s && s.totals) || []).map((x) => x.contacts + " " + (KIND[x.type] || x.type)).join(" · ");
    $("hist-totals").textContent = tot ? "In range: " + tot : "Nothing recorded in this range.";
  }
  async function histSelect(id) {
    if (hist.id === id) { histClear(); return; }
    hist.id = id;
    hist.row = hist.rows.find((c) => c.id === id) || null;
    hist.track = null;
    hist.exportInfo = null;
    $("hist-export").textContent = "";
    $("hist-sel").hidden = false;
    $("hist-sel-id").textContent = id;
    $("hist-sel-info").textContent = hist.row ? histDetail(hist.row) : "";
    const hasFixes = !hist.row || hist.row.fixes > 0;
    for (const b of document.querySelectorAll(".export")) b.disabled = !hasFixes;
    renderHistList();
    if (!hasFixes) { $("hist-sel-info").textContent += " · no positions (no track)"; dirty.map = true; schedule(); return; }
    let r;
    try { r = await api("/api/v1/history/tracks/" + encodeURIComponent(id) + "?format=geojson"); } catch (_) { r = { status: 0, body: null }; }
    if (hist.id !== id) return;
    if (r.status !== 200 || !r.body || !Array.isArray(r.body.features)) { $("hist-export").textContent = "Track: " + histFail(r); return; }
    const line = r.body.features.find((f) => f.geometry && f.geometry.type === "LineString");
    const pts = line ? line.geometry.coordinates.filter((p) => typeof p[0] === "number" && typeof p[1] === "number") : [];
    const times = r.body.features.filter((f) => f.geometry && f.geometry.type === "Point").map((f) => f.properties && f.properties.time_ms);
    hist.track = { id, pts: pts.map((p) => [p[1], p[0], p[2]]), t0: times[0], t1: times[times.length - 1], truncated: !!(line && line.properties && line.properties.truncated) };
    view.auto = true;
    dirty.map = true;
    schedule();
  }
  function histClear() {
    hist.id = hist.row = hist.track = null;
    $("hist-sel").hidden = true;
    canvas.dataset.histPoints = "0";
    renderHistList();
    view.auto = true;
    dirty.map = true;
    schedule();
  }
  $("hist-clear").addEventListener("click", histClear);
  $("hist-list").addEventListener("click", (e) => {
    const li = e.target.closest("li[data-hid]");
    if (li) histSelect(li.dataset.hid);
  });
  $("hist-list").addEventListener("keydown", (e) => {
    const li = e.target.closest("li[data-hid]");
    if (!li) return;
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); histSelect(li.dataset.hid); }
    if (e.key === "ArrowDown" && li.nextElementSibling) { e.preventDefault(); li.nextElementSibling.focus(); }
    if (e.key === "ArrowUp" && li.previousElementSibling) { e.preventDefault(); li.previousElementSibling.focus(); }
  });
  // Exports: fetched with the session's header, handed to the browser as a blob download.
  async function histExport(format) {
    const id = hist.id;
    if (!id) return;
    const out = $("hist-export");
    out.className = "cmd-result";
    out.textContent = format.toUpperCase() + ": fetching…";
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), 30000);
    try {
      const r = await fetch("/api/v1/history/tracks/" + encodeURIComponent(id) + "?format=" + format, { headers: authHeaders(), signal: ctl.signal });
      const blob = await r.blob();
      if (!r.ok) { out.className = "cmd-result bad"; out.textContent = format.toUpperCase() + ": " + histFail({ status: r.status, body: null }); return; }
      const cd = r.headers.get("Content-Disposition") || "";
      const m = /filename="([^"]+)"/.exec(cd);
      const name = m ? m[1] : id.replace(/[^A-Za-z0-9-]/g, "_") + "." + format;
      // What was saved, for the operator (and the browser test): the first bytes say the kind.
      let kind = "";
      if (format === "geojson") { try { kind = JSON.parse(await blob.text()).type || ""; } catch (_) { kind = "invalid"; } }
      hist.exportInfo = { format, status: r.status, bytes: blob.size, name, kind, type: r.headers.get("Content-Type") || "" };
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
      out.className = "cmd-result good";
      out.textContent = "Saved " + name + " (" + (blob.size < 10240 ? blob.size + " B" : Math.round(blob.size / 1024) + " kB") + ")";
    } catch (_) {
      out.className = "cmd-result bad";
      out.textContent = format.toUpperCase() + ": no answer from the kit";
    } finally {
      clearTimeout(t);
    }
  }
  for (const b of document.querySelectorAll(".export")) b.addEventListener("click", () => histExport(b.dataset.format));

  // The track on the map: a dashed line with its fixes as dots, START and END marked,
  // drawn under the live drones in its own colour so it is never mistaken for one.
  function drawHistTrack(ctx, k, toXY) {
    const t = hist.track;
    if (!t || !t.pts.length) { canvas.dataset.histPoints = "0"; return; }
    ctx.save();
    ctx.strokeStyle = k.hist;
    ctx.lineWidth = 3;
    ctx.setLineDash([10, 6]);
    ctx.beginPath();
    t.pts.forEach((p, i) => { const [x, y] = toXY(p[0], p[1]); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = k.hist;
    const every = Math.max(1, Math.floor(t.pts.length / 300));
    for (let i = 0; i < t.pts.length; i += every) { const [x, y] = toXY(t.pts[i][0], t.pts[i][1]); ctx.fillRect(x - 2, y - 2, 4, 4); }
    const [sx, sy] = toXY(t.pts[0][0], t.pts[0][1]);
    const [ex, ey] = toXY(t.pts[t.pts.length - 1][0], t.pts[t.pts.length - 1][1]);
    ctx.strokeStyle = k.map;
    ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(sx, sy, 8, 0, Math.PI * 2); ctx.fill(); ctx.stroke();
    ctx.fillRect(ex - 8, ey - 8, 16, 16); ctx.strokeRect(ex - 8, ey - 8, 16, 16);
    ctx.font = "bold 14px system-ui, sans-serif";
    ctx.textAlign = "left";
    ctx.fillText("START " + (t.t0 ? fmtTime(t.t0).slice(11) : ""), sx + 12, sy + 5);
    // Below-left of its marker: a live drone at the same spot labels itself to the right.
    ctx.textAlign = "right";
    ctx.fillText("END " + (t.t1 ? fmtTime(t.t1).slice(11) : ""), ex - 4, ey + 26);
    ctx.restore();
    canvas.dataset.histPoints = String(t.pts.length);
    canvas.dataset.histId = t.id;
  }
  // The view that shows the whole track (centre and metres per pixel).
  function histView(w, h) {
    const t = hist.track;
    let a = Infinity, b = -Infinity, c = Infinity, d = -Infinity;
    for (const p of t.pts) { a = Math.min(a, p[0]); b = Math.max(b, p[0]); c = Math.min(c, p[1]); d = Math.max(d, p[1]); }
    const lat = (a + b) / 2, lon = (c + d) / 2;
    const hy = ((b - a) / 2) * 110574, hx = ((d - c) / 2) * 111320 * Math.cos(rad(lat));
    const mpp = Math.max(40 / Math.max(50, Math.min(w, h) / 2 - 40), hx / Math.max(50, w / 2 - 70), hy / Math.max(50, h / 2 - 50)) * 1.1;
    return { lat, lon, mpp };
  }

  // ---- frame loop -------------------------------------------------------------------
  // With many contacts the list and the map are redrawn less often (a drone's position
  // changes about once a second anyway); the rest is cheap and follows every frame.
  let lastMap = 0;
  let later = 0;
  function render() {
    frame = 0;
    const now = Date.now();
    const many = st.contacts.size > 100;
    const listEvery = many ? 1000 : 250;
    const mapEvery = many ? 250 : 0;
    if (dirty.list && now - lastList >= listEvery) { dirty.list = false; lastList = now; renderList(now); }
    if (dirty.map && now - lastMap >= mapEvery) { dirty.map = false; lastMap = now; drawMap(); }
    if (dirty.rf) { dirty.rf = false; renderRf(now); }
    if (dirty.kit) { dirty.kit = false; renderKit(); }
    if (dirty.bar) { dirty.bar = false; renderBar(now); }
    if ((dirty.list || dirty.map) && !later) {
      const wait = Math.max(10, Math.min(dirty.list ? listEvery - (now - lastList) : 1e9, dirty.map ? mapEvery - (now - lastMap) : 1e9));
      later = setTimeout(() => { later = 0; schedule(); }, wait);
    }
  }
  // Ages and staleness move even when nothing arrives.
  setInterval(() => { dirty.bar = dirty.list = true; dirty.map = dirty.map || view.auto; schedule(); }, 1000);
  window.addEventListener("resize", () => { dirty.map = true; schedule(); });
  new ResizeObserver(() => { dirty.map = true; schedule(); }).observe(canvas);

  // ---- tabs and keys -----------------------------------------------------------------
  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  function showTab(name) {
    for (const t of tabs) {
      const on = t.dataset.tab === name;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $("tab-" + t.dataset.tab).hidden = !on;
    }
    dirty.list = dirty.rf = dirty.kit = true;
    lastList = 0;
    if (name === "history" && !hist.loaded) histPreset(hist.hours || 24);
    schedule();
  }
  tabs.forEach((t, i) => {
    t.addEventListener("click", () => showTab(t.dataset.tab));
    t.addEventListener("keydown", (e) => {
      const d = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (!d) return;
      const n = tabs[(i + d + tabs.length) % tabs.length];
      n.focus();
      showTab(n.dataset.tab);
    });
  });
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "1") showTab("contacts");
    else if (e.key === "2") showTab("rf");
    else if (e.key === "3") showTab("kit");
    else if (e.key === "4") showTab("history");
    else if (e.key === "m") setMute(!muted);
    else if (e.key === "t") $("theme").click();
    else if (e.key === "Escape") ackAlert();
  });

  // ---- start ---------------------------------------------------------------------------
  async function start() {
    stopped = false;
    let who;
    try { who = await identify(); } catch (_) { who = null; }
    if (who === false) return;
    applyRole();
    try {
      const c = await api("/dashboard/config.json");
      if (c.status === 200 && c.body && typeof c.body.tiles === "string") tilesUrl = c.body.tiles;
    } catch (_) { /* no map background */ }
    connect();
  }
  setTheme(localStorage.getItem("ndf.theme") || (matchMedia("(prefers-color-scheme: light)").matches ? "day" : "night"));
  setMute(muted);
  showTab("contacts");
  start();
})();
