/* Lifeline Sentinel operator console. Plain JS, no build: the page talks to /api (cookie session, CSRF
   header on changes) and listens to /api/stream (server-sent events) so the board updates without reload. */
"use strict";
(() => {
  // ---- labels: Chinese first (operators read Chinese), English beside or alone (中/EN toggle) ----------------
  const L = {
    appSub: ["运行监控台", "Operations console"], loginSub: ["城市生命线运行监控台", "Lifeline operations console"],
    username: ["用户名", "Username"], password: ["密码", "Password"], login: ["登录", "Log in"], logout: ["退出", "Log out"],
    red: ["一级", "Red"], orange: ["二级", "Orange"], yellow: ["三级", "Yellow"],
    redLong: ["一级告警", "Grade I · red"], orangeLong: ["二级告警", "Grade II · orange"], yellowLong: ["三级告警", "Grade III · yellow"],
    tabBoard: ["告警看板", "Alert board"], tabAudit: ["审计记录", "Audit trail"], tabSilences: ["静默", "Silences"], tabRules: ["规则", "Rules"],
    network: ["管网", "Network"], zone: ["片区", "Zone"], grade: ["等级", "Grade"], state: ["状态", "State"], search: ["搜索 设备/规则/消息", "Search sensor / rule / message"],
    all: ["全部", "All"], water: ["供水", "Water"], heat: ["供热", "Heat"], gas: ["燃气", "Gas"],
    open: ["未关闭", "Open"], firing: ["告警中", "Firing"], acknowledged: ["已确认", "Acknowledged"], resolved: ["已关闭", "Resolved"],
    cleared: ["已恢复·待关闭", "Cleared, closing"], muted: ["已静默", "Muted"], none: ["无", "None"],
    zoneOverview: ["片区总览", "Zone overview"], normal: ["正常", "Normal"], noCoords: ["无坐标片区", "Zones without coordinates"],
    live: ["实时", "Live"], offline: ["连接中断，重连中…", "Disconnected, retrying…"], connecting: ["连接中…", "Connecting…"],
    started: ["首次触发", "Started"], updated: ["最近变化", "Updated"], value: ["触发值", "Value"], message: ["消息", "Message"],
    subject: ["对象", "Subject"], sensor: ["传感器", "Sensor"], rule: ["规则", "Rule"], kind: ["类型", "Kind"], select: ["对象", "Selects"],
    thresholds: ["阈值与参数", "Thresholds & parameters"], hold: ["持续", "Hold"], ackBy: ["确认人", "Acknowledged by"], resolvedBy: ["关闭人", "Resolved by"],
    mutedBy: ["静默", "Muted by"], chart: ["相关传感器趋势", "Sensors around the event"], actions: ["处置", "Actions"],
    reasonPh: ["原因 / 处置说明（必填：关闭、静默、备注）", "Reason / what is being done (required to resolve, silence, note)"],
    acknowledge: ["确认", "Acknowledge"], resolve: ["关闭", "Resolve"], note: ["备注", "Add note"], silence: ["静默", "Silence"],
    silenceZone: ["整个片区", "Whole zone"], silenceSensor: ["该传感器", "This sensor"], history: ["处置记录", "History"],
    needReason: ["请填写原因", "Please give a reason"], done_acknowledge: ["已确认", "Acknowledged"], done_resolve: ["已关闭", "Resolved"],
    done_note: ["已添加备注", "Note added"], done_silence: ["已静默", "Silenced"], noRule: ["规则已不存在（已修改或删除）", "Rule no longer active (changed or removed)"],
    noData: ["该时段无数据", "No readings in this window"], close: ["关闭面板", "Close"], time: ["时间", "Time"], actor: ["操作人", "Actor"],
    role: ["角色", "Role"], action: ["操作", "Action"], target: ["对象", "Target"], detail: ["详情", "Detail"], auditTitle: ["审计记录", "Audit trail"],
    silenceNew: ["新建静默（检修窗口）", "New silence (maintenance window)"], silencesTitle: ["当前静默", "Current silences"],
    matchers: ["范围", "Scope"], from: ["开始", "From"], until: ["结束", "Until"], by: ["操作人", "By"], reason: ["原因", "Reason"],
    end: ["结束静默", "End now"], startNow: ["留空表示立即开始", "Leave empty to start now"], active: ["生效中", "Active"], pending: ["未开始", "Pending"], expired: ["已结束", "Ended"],
    rulesActive: ["运行中的规则", "Active rules"], rulesUpload: ["上传新规则", "Upload rules"], rulesVersions: ["规则版本", "Rule versions"],
    validate: ["校验", "Validate"], upload: ["上传", "Upload"], rollback: ["回滚到上一版本", "Roll back"], dryHours: ["试运行时长(小时)", "Dry-run hours"],
    version: ["版本", "Version"], name: ["名称", "Name"], comment: ["说明", "Comment"], commentPh: ["变更说明", "What changed and why"],
    dryRun: ["试运行", "Dry run"], activate: ["启用", "Activate"], current: ["当前", "Active"], valid: ["校验通过", "Valid"],
    unmatched: ["本目录中无匹配对象", "select nothing in this catalog"], added: ["新增告警", "Would newly alert"], removed: ["不再告警", "Would no longer alert"],
    changed: ["有变化", "Changed"], activeRules: ["现行规则", "Active rules"], candidate: ["候选规则", "Candidate"],
    notManaged: ["本控制台不管理规则文件（只读）", "Rules are not managed by this console (read only)"],
    sessionEnded: ["登录已失效，请重新登录", "Session ended, please log in again"], loginFailed: ["用户名或密码错误", "Wrong username or password"],
    viewer: ["值班查看", "Viewer"], operator: ["调度员", "Operator"], engineer: ["工程师", "Engineer"], confirmActivate: ["确认启用该版本？", "Activate this version?"],
    confirmRollback: ["确认回滚到上一版本？", "Roll back to the previous version?"], window: ["回放区间", "Window"], readings: ["读数", "readings"],
    "alert.acknowledge": ["确认告警", "Acknowledge"], "alert.resolve": ["关闭告警", "Resolve"], "alert.note": ["添加备注", "Note"],
    "silence.add": ["新建静默", "Silence added"], "silence.expire": ["结束静默", "Silence ended"], "rules.upload": ["上传规则", "Rules uploaded"],
    "rules.activate": ["启用规则", "Rules activated"], "rules.rollback": ["回滚规则", "Rules rolled back"], "auth.login": ["登录", "Login"],
    "auth.logout": ["退出", "Logout"], "auth.login_failed": ["登录失败", "Login failed"], "token.create": ["创建令牌", "Token created"],
    "token.revoke": ["吊销令牌", "Token revoked"], "user.add": ["新增用户", "User added"], "user.passwd": ["修改密码", "Password changed"],
    "user.role": ["修改角色", "Role changed"], "user.disable": ["停用用户", "User disabled"], "user.enable": ["启用用户", "User enabled"],
    opened: ["触发", "Opened"], escalated: ["升级", "Escalated"], deescalated: ["降级", "De-escalated"], reactivated: ["再次触发", "Re-fired"],
  };
  let lang = localStorage.getItem("sentinel.lang") || "zh";
  const t = (k) => (L[k] ? L[k][lang === "zh" ? 0 : 1] : k);
  const both = (k) => (L[k] ? (lang === "zh" ? `${L[k][0]}<small class="en">${L[k][1]}</small>` : L[k][1]) : esc(k));
  const GRADES = ["red", "orange", "yellow"];
  const COLOUR = { red: "#ff3b3b", orange: "#ff8a1f", yellow: "#ffd21f", ok: "#2fd37a" };
  const SERIES = ["#5aa9ff", "#2fd37a", "#c084fc", "#f472b6"];

  const S = { me: null, sensors: [], sensorById: {}, zones: [], alerts: new Map(), rules: null, silences: [],
              audit: [], detailId: null, detail: null, chart: "", es: null, tab: "board", renderPending: false, live: null };
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const ms = (ns) => Number(ns) / 1e6;
  const can = (what) => !!S.me && S.me.can.includes(what);

  // ---- talking to the server ----------------------------------------------------------------------------------
  class ApiError extends Error { constructor(status, msg, data) { super(msg); this.status = status; this.data = data; } }
  function detailText(data) {
    if (!data || data.detail === undefined) return "error";
    if (typeof data.detail === "string") return data.detail;
    return (data.detail || []).map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  }
  async function api(path, opts = {}) {
    const init = { method: opts.method || "GET", credentials: "same-origin", headers: { "X-Sentinel-Console": "1" } };
    if (opts.body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(opts.body); }
    const r = await fetch(path, init);
    if (r.status === 401 && !opts.quiet) { showLogin(t("sessionEnded")); throw new ApiError(401, t("sessionEnded")); }
    if (r.status === 204) return null;
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new ApiError(r.status, detailText(data), data);
    return data;
  }
  let toastTimer = 0;
  function toast(msg, error = false) {
    const el = $("#toast");
    el.textContent = msg; el.className = "show" + (error ? " error" : "");
    clearTimeout(toastTimer); toastTimer = setTimeout(() => { el.className = ""; }, error ? 6000 : 2500);
  }

  // ---- time ----------------------------------------------------------------------------------------------------
  const pad = (n) => String(n).padStart(2, "0");
  function fmtTime(ns, withDate = true) {
    if (ns === null || ns === undefined) return "";
    const d = new Date(ms(ns));
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return withDate ? `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}` : hm;
  }
  function fmtAge(msSpan) {
    const s = Math.max(0, Math.floor(msSpan / 1000));
    const zh = lang === "zh";
    if (s < 60) return zh ? `${s} 秒` : `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return zh ? `${m} 分钟` : `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 24) return zh ? `${h} 小时 ${m % 60} 分` : `${h}h ${m % 60}m`;
    const d = Math.floor(h / 24);
    return zh ? `${d} 天 ${h % 24} 小时` : `${d}d ${h % 24}h`;
  }
  function tick() {
    const now = Date.now();
    $("#clock").textContent = new Date(now).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
    for (const el of $$("[data-since]")) {
      const until = el.dataset.until ? Number(el.dataset.until) : now;
      el.textContent = fmtAge(until - Number(el.dataset.since));
    }
  }

  // ---- labels applied to the static page -------------------------------------------------------------------------
  function applyLang() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    $$("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    $$("[data-i18n-html]").forEach((el) => { el.innerHTML = both(el.dataset.i18nHtml); });
    $$("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
    $$("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
    $("#lang").textContent = lang === "zh" ? "EN" : "中";
    if (S.me) { $("#who-role").textContent = t(S.me.role); setLive(S.live); fillFilters(); fillSilenceForm(); renderAll(); }
  }

  // ---- login -----------------------------------------------------------------------------------------------------
  function showLogin(msg = "") {
    if (S.es) { S.es.close(); S.es = null; }
    S.me = null;
    $("#app").hidden = true; $("#detail").hidden = true; $("#login").hidden = false;
    $("#login-error").textContent = msg;
    $("#login-user").focus();
  }
  async function login(ev) {
    ev.preventDefault();
    $("#login-error").textContent = "";
    try {
      await api("/api/auth/login", { method: "POST", quiet: true,
        body: { username: $("#login-user").value.trim(), password: $("#login-pass").value } });
      $("#login-pass").value = "";
      await start();
    } catch (e) {
      $("#login-error").textContent = e.status === 401 ? t("loginFailed") : e.message;
    }
  }
  async function logout() {
    try { await api("/api/auth/logout", { method: "POST", quiet: true }); } catch (e) { /* already gone */ }
    showLogin();
  }

  // ---- loading ---------------------------------------------------------------------------------------------------
  async function loadCatalog() {
    [S.sensors, S.zones] = await Promise.all([api("/api/sensors"), api("/api/zones")]);
    S.sensorById = Object.fromEntries(S.sensors.map((s) => [s.sensor_id, s]));
  }
  async function loadAlerts() {
    const [open, resolved] = await Promise.all([api("/api/alerts?state=open&limit=2000"),
      api("/api/alerts?state=resolved&limit=200")]);
    S.alerts = new Map();
    for (const a of [...resolved.alerts, ...open.alerts]) S.alerts.set(a.alert_id, a);
  }
  async function loadRules() { S.rules = await api("/api/rules"); renderRules(); }
  async function loadSilences() {
    S.silences = (await api("/api/silences?state=current")).silences;
    S.zones = await api("/api/zones");
    renderSilences(); scheduleRender();
  }
  async function loadAudit() { S.audit = (await api("/api/audit?limit=200")).entries; renderAudit(); }

  async function start() {
    try { S.me = await api("/api/me", { quiet: true }); } catch (e) { showLogin(); return; }
    $("#login").hidden = true; $("#app").hidden = false;
    $("#who-name").textContent = S.me.actor;
    applyLang();
    await Promise.all([loadCatalog(), loadAlerts(), loadRules(), loadSilences(), loadAudit()]);
    fillFilters(); fillSilenceForm(); renderAll(); connect();
  }

  // ---- live updates (server-sent events) ----------------------------------------------------------------------------
  function setLive(on) {
    S.live = on;
    const el = $("#live");
    el.className = "live " + (on === null ? "" : on ? "on" : "off");
    $("#live-text").textContent = on === null ? t("connecting") : on ? t("live") : t("offline");
  }
  function connect() {
    if (S.es) S.es.close();
    setLive(null);
    const es = new EventSource("/api/stream");
    S.es = es;
    let dropped = false;
    es.addEventListener("hello", () => { setLive(true); if (dropped) { dropped = false; resync(); } });
    es.addEventListener("heartbeat", () => setLive(true));
    es.addEventListener("change", (ev) => {
      const c = JSON.parse(ev.data);
      upsert(c.alert);
      scheduleRender();
      if (S.detailId === c.alert.alert_id) refreshDetailSoon();
    });
    es.addEventListener("audit", (ev) => {
      const e = JSON.parse(ev.data);
      if (!S.audit.some((x) => x.id === e.id)) { S.audit.unshift(e); S.audit.length = Math.min(S.audit.length, 500); renderAudit(e.id); }
      if (e.action.startsWith("silence.")) loadSilences().then(resync);
      if (e.action.startsWith("rules.")) loadRules();
      if (S.detailId && e.target === `alert:${S.detailId}`) refreshDetailSoon();
    });
    es.addEventListener("bye", () => { es.close(); showLogin(t("sessionEnded")); });
    es.onerror = () => {
      setLive(false); dropped = true;
      if (es.readyState === EventSource.CLOSED) setTimeout(() => api("/api/me").then(connect).catch(() => {}), 3000);
    };
  }
  async function resync() { await loadAlerts(); scheduleRender(); }
  function upsert(a) {
    S.alerts.set(a.alert_id, a);
    const resolved = [...S.alerts.values()].filter((x) => x.state === "resolved");
    if (resolved.length > 400) {
      resolved.sort((x, y) => x.updated_ns - y.updated_ns).slice(0, resolved.length - 400).forEach((x) => S.alerts.delete(x.alert_id));
    }
  }
  function scheduleRender() {
    if (S.renderPending) return;
    S.renderPending = true;
    requestAnimationFrame(() => { S.renderPending = false; renderBoard(); renderZones(); });
  }
  function renderAll() { renderBoard(); renderZones(); renderAudit(); renderSilences(); renderRules(); }

  // ---- board -----------------------------------------------------------------------------------------------------
  function option(value, label, selected) { return `<option value="${esc(value)}"${selected ? " selected" : ""}>${esc(label)}</option>`; }
  function fillFilters() {
    const keep = (id) => ($(id) ? $(id).value : "");
    const [n, z, g, s] = ["#f-network", "#f-zone", "#f-grade", "#f-state"].map(keep);
    $("#f-network").innerHTML = option("", t("all"), !n) + ["water", "heat", "gas"].map((x) => option(x, t(x), n === x)).join("");
    $("#f-zone").innerHTML = option("", t("all"), !z) + S.zones.map((x) => option(x.key, `${x.zone} · ${t(x.network)}`, z === x.key)).join("");
    $("#f-grade").innerHTML = option("", t("all"), !g) + GRADES.map((x) => option(x, lang === "zh" ? `${L[x][0]} ${L[x][1]}` : L[x][1], g === x)).join("");
    $("#f-state").innerHTML = ["open", "firing", "acknowledged", "resolved", "all"]
      .map((x) => option(x, t(x), (s || "open") === x)).join("");
  }
  function filters() {
    return { network: $("#f-network").value, zone: $("#f-zone").value, grade: $("#f-grade").value,
             state: $("#f-state").value || "open", text: $("#f-text").value.trim().toLowerCase() };
  }
  function matches(a, f) {
    if (f.network && a.network !== f.network) return false;
    if (f.zone && `${a.network}/${a.zone}` !== f.zone) return false;
    if (f.grade && a.severity !== f.grade) return false;
    if (f.state === "open" && a.state === "resolved") return false;
    if (!["open", "all"].includes(f.state) && a.state !== f.state) return false;
    if (f.text && ![a.subject, a.rule_id, a.message, a.zone, a.sensor_id || ""].join(" ").toLowerCase().includes(f.text)) return false;
    return true;
  }
  function statePill(a) {
    if (a.state === "resolved") return `<span class="pill resolved">${t("resolved")}</span>`;
    const base = `<span class="pill ${a.state}">${t(a.state)}</span>`;
    return a.cleared_ns ? `${base} <span class="pill cleared">${t("cleared")}</span>` : base;
  }
  function row(a) {
    const since = ms(a.started_ns);
    const until = a.state === "resolved" && a.resolved_ns ? ` data-until="${ms(a.resolved_ns)}"` : "";
    const who = a.state === "resolved" ? (a.resolved_by ? `✔ ${esc(a.resolved_by)}` : "") : (a.acked_by ? `✔ ${esc(a.acked_by)}` : "");
    return `<div class="alert-row grade-${a.severity} state-${a.state}${S.detailId === a.alert_id ? " selected" : ""}" data-id="${esc(a.alert_id)}" tabindex="0">
      <div><span class="badge ${a.severity}">${t(a.severity)}</span></div>
      <div>${statePill(a)}${a.silenced_by ? ` <span class="pill muted">${t("muted")}</span>` : ""}</div>
      <div class="where"><div>${esc(a.zone)}</div><div class="net">${t(a.network)} · ${esc(a.network)}</div></div>
      <div class="what"><div class="subject">${esc(a.subject)} <span class="net">· ${esc(a.rule_id)}</span></div><div class="msg" title="${esc(a.message)}">${esc(a.message)}</div></div>
      <div class="since"><div class="age" data-since="${since}"${until}>${fmtAge((until ? ms(a.resolved_ns) : Date.now()) - since)}</div><div class="t">${fmtTime(a.started_ns)}</div></div>
      <div class="by">${who}</div></div>`;
  }
  function order(a, b) {
    const rank = (x) => (x.state === "firing" ? 0 : x.state === "acknowledged" ? 1 : 2);
    return rank(a) - rank(b) || Number(b.started_ns) - Number(a.started_ns);
  }
  function renderBoard() {
    if (!S.me) return;
    const f = filters();
    const all = [...S.alerts.values()];
    for (const g of GRADES) {
      const open = all.filter((a) => a.severity === g && a.state !== "resolved");
      const box = $(`#total-${g}`);
      box.querySelector(".n").textContent = open.length;
      box.classList.toggle("hot", g === "red" && open.some((a) => a.state === "firing"));
    }
    const shown = all.filter((a) => matches(a, f));
    $("#board").innerHTML = GRADES.map((g) => {
      const rows = shown.filter((a) => a.severity === g).sort(order);
      return `<section class="grade-group ${g}" data-grade="${g}"><h2>${both(g + "Long")}<span class="count">${rows.length}</span></h2>
        ${rows.length ? rows.map(row).join("") : `<div class="empty">${t("none")}</div>`}</section>`;
    }).join("");
  }

  // ---- zone overview: a map from sensor coordinates, else a list ---------------------------------------------------------
  function zoneStatus() {
    const st = {};
    for (const z of S.zones) st[z.key] = { worst: null, open: { red: 0, orange: 0, yellow: 0 }, silenced: z.silenced };
    for (const a of S.alerts.values()) {
      if (a.state === "resolved") continue;
      const s = st[`${a.network}/${a.zone}`];
      if (!s) continue;
      s.open[a.severity] += 1;
      if (!s.worst || GRADES.indexOf(a.severity) < GRADES.indexOf(s.worst)) s.worst = a.severity;
    }
    return st;
  }
  function hull(points) {
    const p = [...new Map(points.map((q) => [q.join(","), q])).values()].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    if (p.length < 3) return p;
    const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    const lower = [], upper = [];
    for (const q of p) { while (lower.length >= 2 && cross(lower.at(-2), lower.at(-1), q) <= 0) lower.pop(); lower.push(q); }
    for (const q of [...p].reverse()) { while (upper.length >= 2 && cross(upper.at(-2), upper.at(-1), q) <= 0) upper.pop(); upper.push(q); }
    return lower.slice(0, -1).concat(upper.slice(0, -1));
  }
  function renderZones() {
    if (!S.me) return;
    const st = zoneStatus();
    const located = S.sensors.filter((s) => s.lat !== null && s.lon !== null);
    const alertsBySensor = {};
    for (const a of S.alerts.values()) {
      if (a.state !== "resolved" && a.sensor_id && (!alertsBySensor[a.sensor_id] || GRADES.indexOf(a.severity) < GRADES.indexOf(alertsBySensor[a.sensor_id]))) {
        alertsBySensor[a.sensor_id] = a.severity;
      }
    }
    let mapped = new Set();
    if (located.length) {
      const W = 380, H = 280, P = 30;
      const lats = located.map((s) => s.lat), lons = located.map((s) => s.lon);
      const [minLat, maxLat, minLon, maxLon] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
      const kx = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
      const dx = Math.max((maxLon - minLon) * kx, 1e-6), dy = Math.max(maxLat - minLat, 1e-6);
      const k = Math.min((W - 2 * P) / dx, (H - 2 * P) / dy);
      const ox = (W - dx * k) / 2, oy = (H - dy * k) / 2;
      const proj = (s) => [ox + (s.lon - minLon) * kx * k, oy + (maxLat - s.lat) * k];
      const byZone = {};
      for (const s of located) (byZone[`${s.network}/${s.zone}`] ||= []).push(s);
      let shapes = "", dots = "", labels = "";
      for (const [key, list] of Object.entries(byZone)) {
        mapped.add(key);
        const z = st[key] || { worst: null, open: {}, silenced: false };
        const colour = z.worst ? COLOUR[z.worst] : COLOUR.ok;
        const pts = list.map(proj);
        const h = hull(pts);
        const dash = z.silenced ? ' stroke-dasharray="4 3"' : "";
        const poly = h.map((q) => q.map((v) => v.toFixed(1)).join(",")).join(" ");
        // the sensors' hull widened by a round stroke: one blob per zone, drawn as a single translucent layer
        const blob = `fill="${colour}" stroke="${colour}" stroke-width="34" stroke-linejoin="round" stroke-linecap="round"`;
        const body = h.length >= 3 ? `<polygon points="${poly}" ${blob}/>` : h.length === 2 ? `<polyline points="${poly}" ${blob}/>`
          : `<circle cx="${h[0][0].toFixed(1)}" cy="${h[0][1].toFixed(1)}" r="17" fill="${colour}"/>`;
        const edge = h.length >= 2 ? `<${h.length >= 3 ? "polygon" : "polyline"} points="${poly}" fill="none" stroke="${colour}" stroke-width="36" stroke-linejoin="round" stroke-linecap="round" stroke-opacity="0.5"${dash}/>` : `<circle cx="${h[0][0].toFixed(1)}" cy="${h[0][1].toFixed(1)}" r="18" fill="none" stroke="${colour}" stroke-opacity="0.7"${dash}/>`;
        shapes += `<g class="zone-shape" data-zone="${esc(key)}" data-worst="${z.worst || "ok"}"><title>${esc(key)}</title>` +
          `<g opacity="0.25">${edge}</g><g opacity="${z.worst ? 0.42 : 0.25}">${body}</g></g>`;
        for (const s of list) {
          const [x, y] = proj(s);
          const g = alertsBySensor[s.sensor_id];
          dots += g ? `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="5" fill="${COLOUR[g]}" stroke="#fff" stroke-width="1"><title>${esc(s.sensor_id)}</title>` +
            `<animate attributeName="r" values="5;8;5" dur="1.6s" repeatCount="indefinite"/></circle>`
            : `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="2.6" fill="#c9d4e5"><title>${esc(s.sensor_id)}</title></circle>`;
        }
        const cx = pts.reduce((a, q) => a + q[0], 0) / pts.length, cy = Math.min(...pts.map((q) => q[1])) - 18;
        const n = (z.open.red || 0) + (z.open.orange || 0) + (z.open.yellow || 0);
        labels += `<text class="zone-label" x="${cx.toFixed(1)}" y="${Math.max(12, cy).toFixed(1)}" text-anchor="middle">${esc(list[0].zone)}${n ? ` (${n})` : ""}</text>`;
      }
      $("#zone-map").innerHTML = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(t("zoneOverview"))}">${shapes}${dots}${labels}</svg>`;
      $("#zone-legend").innerHTML = GRADES.map((g) => `<span><i style="background:${COLOUR[g]}"></i>${t(g)}</span>`).join("") +
        `<span><i style="background:${COLOUR.ok}"></i>${t("normal")}</span>`;
    } else {
      $("#zone-map").innerHTML = ""; $("#zone-legend").innerHTML = "";
    }
    const rest = S.zones.filter((z) => !mapped.has(z.key));
    const counts = (z) => GRADES.filter((g) => z.open[g]).map((g) => `${t(g)} ${z.open[g]}`).join(" · ") || t("normal");
    $("#zone-list").innerHTML = (rest.length && located.length ? `<li class="empty">${both("noCoords")}</li>` : "") +
      rest.sort((a, b) => (GRADES.indexOf(st[a.key].worst) + 4) % 4 - (GRADES.indexOf(st[b.key].worst) + 4) % 4 || a.key.localeCompare(b.key))
        .map((z) => `<li data-zone="${esc(z.key)}"><span class="chip ${st[z.key].worst || ""}"></span><span>${esc(z.zone)}</span>` +
          `<span class="net">${t(z.network)}</span>${st[z.key].silenced ? `<span class="pill muted">${t("muted")}</span>` : ""}` +
          `<span class="zone-counts">${counts(st[z.key])}</span></li>`).join("");
  }
  function pickZone(key) {
    const sel = $("#f-zone");
    sel.value = sel.value === key ? "" : key;
    renderBoard();
  }

  // ---- alert detail ---------------------------------------------------------------------------------------------------
  function levelText(v, unit) {
    if (v === null || v === undefined) return "";
    if (typeof v === "object" && !Array.isArray(v)) {
      return GRADES.slice().reverse().filter((g) => v[g] !== undefined).map((g) => `${t(g)} ${v[g]}${unit}`).join(" / ");
    }
    return `${Array.isArray(v) ? v.join("–") : v}${unit}`;
  }
  function paramsTable(rule, unit) {
    const units = { high: unit, low: unit, change: unit, hysteresis: unit, min_deviation: unit, within: " s", after: " s", duration: " s" };
    const rows = Object.entries(rule.params).filter(([, v]) => v !== null && v !== undefined && !(typeof v === "object" && !Array.isArray(v) && !Object.keys(v).length));
    return `<table class="params">${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${typeof v === "object" && !Array.isArray(v) && !GRADES.some((g) => g in v)
      ? esc(JSON.stringify(v)) : esc(levelText(v, units[k] ? (units[k].startsWith(" ") ? units[k] : " " + units[k]) : ""))}</td></tr>`).join("")}
      <tr><td>for</td><td>${rule.for_s} s</td></tr></table>`;
  }
  function timeline(d) {
    const grade = (c) => (["opened", "escalated", "deescalated", "reactivated"].includes(c.change) && c.current_severity
      ? ` <span class="badge ${c.current_severity}">${t(c.current_severity)}</span>` : "");
    const items = d.history.map((c) => ({ t: c.time_ns, cls: "", html: `<b>${t(c.change)}</b>${grade(c)} ${c.actor ? `· ${esc(c.actor)}` : ""} ${c.note ? `— ${esc(c.note)}` : ""}` }))
      .concat(d.notes.map((n) => ({ t: n.time_ns, cls: "note", html: `<b>${t("note")}</b> · ${esc(n.author)} — ${esc(n.text)}` })));
    items.sort((a, b) => Number(a.t) - Number(b.t));
    return `<ul class="timeline">${items.map((i) => `<li class="${i.cls}"><span class="t">${fmtTime(i.t)}</span>${i.html}</li>`).join("")}</ul>`;
  }
  function renderDetail() {
    const d = S.detail, a = d.alert, el = $("#detail");
    const reason = $("#reason") ? $("#reason").value : "";
    const sensor = a.sensor_id ? S.sensorById[a.sensor_id] : null;
    const unit = sensor ? sensor.canonical_unit : "";
    const openAlert = a.state !== "resolved";
    el.innerHTML = `<header><span class="badge ${a.severity}">${t(a.severity)}</span><h2 title="${esc(a.rule_id)}">${esc(a.subject)} · ${esc(a.rule_id)}</h2>
        ${statePill(a)}<button type="button" id="detail-close" title="${esc(t("close"))}">✕</button></header>
      <section><dl class="facts">
        <dt>${both("message")}</dt><dd>${esc(a.message)}</dd>
        <dt>${both("zone")}</dt><dd>${t(a.network)} · ${esc(a.zone)}</dd>
        <dt>${both("subject")}</dt><dd>${esc(a.subject)}${sensor ? ` <span class="net">(${esc(sensor.quantity)}, ${esc(sensor.role)})</span>` : ""}</dd>
        <dt>${both("started")}</dt><dd>${fmtTime(a.started_ns)} · <span class="age" data-since="${ms(a.started_ns)}"${a.resolved_ns ? ` data-until="${ms(a.resolved_ns)}"` : ""}></span></dd>
        <dt>${both("updated")}</dt><dd>${fmtTime(a.updated_ns)}</dd>
        <dt>${both("value")}</dt><dd>${a.value === null ? "—" : `${esc(+a.value.toFixed(2))} ${esc(unit)}`}</dd>
        ${a.acked_by ? `<dt>${both("ackBy")}</dt><dd class="by">${esc(a.acked_by)}${a.ack_note ? ` — ${esc(a.ack_note)}` : ""}</dd>` : ""}
        ${a.resolved_by ? `<dt>${both("resolvedBy")}</dt><dd class="by">${esc(a.resolved_by)}${a.resolve_note ? ` — ${esc(a.resolve_note)}` : ""}</dd>` : ""}
        ${d.silence ? `<dt>${both("mutedBy")}</dt><dd>${esc(d.silence.created_by)} — ${esc(d.silence.comment)} (→ ${fmtTime(d.silence.ends_ns)})</dd>` : ""}
      </dl></section>
      <section class="rule"><h3>${both("rule")}</h3>${d.rule ? `<div><b>${esc(d.rule.id)}</b> <span class="pill">${esc(d.rule.kind)}</span> ${esc(d.rule.description)}</div>${paramsTable(d.rule, unit)}` : `<div class="empty">${t("noRule")}</div>`}</section>
      <section class="chart"><h3>${both("chart")}</h3><div id="chart">${S.chart}</div></section>
      <section class="actions"><h3>${both("actions")}</h3>
        <textarea id="reason" rows="2" placeholder="${esc(t("reasonPh"))}"></textarea>
        <div class="row">
          <button type="button" id="btn-ack" class="primary" ${openAlert && can("acknowledge") ? "" : "disabled"}>${both("acknowledge")}</button>
          <button type="button" id="btn-resolve" ${openAlert && can("resolve") ? "" : "disabled"}>${both("resolve")}</button>
          <button type="button" id="btn-note" ${can("note") ? "" : "disabled"}>${both("note")}</button>
        </div>
        <div class="row">
          <select id="sil-scope">${option("zone", `${t("silenceZone")}: ${a.zone}`)}${a.sensor_id ? option("sensor", `${t("silenceSensor")}: ${a.sensor_id}`, true) : ""}</select>
          <select id="sil-duration">${durations()}</select>
          <button type="button" id="btn-silence" ${can("silence") ? "" : "disabled"}>${both("silence")}</button>
        </div></section>
      <section><h3>${both("history")}</h3>${timeline(d)}</section>`;
    $("#reason").value = reason;
    el.hidden = false;
    tick();
  }
  function durations() {
    return [[30, "30 min"], [60, "1 h"], [120, "2 h"], [240, "4 h"], [480, "8 h"], [1440, "24 h"], [4320, "3 d"]]
      .map(([m, l]) => option(m, l, m === 120)).join("");
  }
  async function openDetail(id) {
    S.detailId = id; S.chart = "";
    $$(".alert-row").forEach((r) => r.classList.toggle("selected", r.dataset.id === id));
    try {
      S.detail = await api(`/api/alerts/${encodeURIComponent(id)}`);
    } catch (e) { toast(e.message, true); return; }
    renderDetail();
    S.chart = await chart(S.detail).catch((e) => `<div class="empty">${esc(e.message)}</div>`);
    if (S.detailId === id) $("#chart").innerHTML = S.chart;
  }
  let detailTimer = 0;
  function refreshDetailSoon() {
    clearTimeout(detailTimer);
    detailTimer = setTimeout(async () => {
      if (!S.detailId) return;
      try { S.detail = await api(`/api/alerts/${encodeURIComponent(S.detailId)}`); renderDetail(); } catch (e) { /* keep what is shown */ }
    }, 150);
  }
  function closeDetail() { S.detailId = null; S.detail = null; $("#detail").hidden = true; $$(".alert-row.selected").forEach((r) => r.classList.remove("selected")); }

  async function act(kind) {
    const a = S.detail.alert, id = encodeURIComponent(a.alert_id);
    const reason = $("#reason").value.trim();
    if (kind !== "acknowledge" && !reason) { toast(t("needReason"), true); $("#reason").focus(); return; }
    try {
      if (kind === "acknowledge") upsert(await api(`/api/alerts/${id}/acknowledge`, { method: "POST", body: { note: reason || null } }));
      else if (kind === "resolve") upsert(await api(`/api/alerts/${id}/resolve`, { method: "POST", body: { note: reason } }));
      else if (kind === "note") await api(`/api/alerts/${id}/notes`, { method: "POST", body: { text: reason } });
      else {
        const scope = $("#sil-scope").value;
        const m = scope === "sensor" ? { sensor_id: a.sensor_id } : { network: a.network, zone: a.zone };
        await api("/api/silences", { method: "POST", body: { ...m, duration_minutes: Number($("#sil-duration").value), comment: reason } });
        await loadSilences(); await resync();
      }
      $("#reason").value = "";
      toast(t(`done_${kind}`));
      scheduleRender();
      refreshDetailSoon();
    } catch (e) { toast(`${e.status || ""} ${e.message}`, true); }
  }

  // ---- chart of the involved sensors around the event (SVG) ------------------------------------------------------------
  async function chart(d) {
    const a = d.alert;
    const start = ms(a.started_ns) - 2 * 3600e3;
    let end = a.resolved_ns ? ms(a.resolved_ns) + 30 * 60e3 : Date.now();
    if (end - start > 7 * 86400e3) end = ms(a.updated_ns) + 30 * 60e3;
    end = Math.min(Math.max(end, ms(a.started_ns) + 30 * 60e3), Date.now() + 60e3);
    const series = await Promise.all(d.sensors.slice(0, 4).map((sid) =>
      api(`/api/sensors/${encodeURIComponent(sid)}/readings?start=${Math.floor(start)}&end=${Math.floor(end)}&max_points=800`)));
    return chartSvg(series, d, start, end);
  }
  function chartSvg(series, d, t0, t1) {
    const a = d.alert, W = 680, H = 250, L0 = 56, R0 = 70, T0 = 12, B0 = 26;
    const pts = series.flatMap((s) => s.value.filter((v) => v !== null));
    if (!pts.length) return `<div class="empty">${t("noData")}</div>`;
    const lines = [];
    if (d.rule && d.rule.kind === "threshold") {
      for (const side of ["high", "low"]) {
        const v = d.rule.params[side];
        if (v === null || v === undefined) continue;
        if (typeof v === "number") lines.push([d.rule.severity, v]);
        else for (const g of GRADES) if (v[g] !== undefined) lines.push([g, v[g]]);
      }
    }
    let lo = Math.min(...pts, ...lines.map((l) => l[1])), hi = Math.max(...pts, ...lines.map((l) => l[1]));
    const span = hi - lo || Math.abs(hi) || 1;
    lo -= span * 0.08; hi += span * 0.08;
    const x = (tm) => L0 + (W - L0 - R0) * (tm - t0) / (t1 - t0);
    const y = (v) => T0 + (H - T0 - B0) * (1 - (v - lo) / (hi - lo));
    let g = "";
    for (let i = 0; i <= 4; i++) {
      const v = lo + (hi - lo) * i / 4, yy = y(v);
      g += `<line class="grid" x1="${L0}" x2="${W - R0}" y1="${yy.toFixed(1)}" y2="${yy.toFixed(1)}"/><text class="axis" x="${L0 - 6}" y="${(yy + 4).toFixed(1)}" text-anchor="end">${v.toFixed(Math.abs(hi - lo) < 10 ? 1 : 0)}</text>`;
    }
    for (let i = 0; i <= 5; i++) {
      const tm = t0 + (t1 - t0) * i / 5, xx = x(tm);
      g += `<text class="axis" x="${xx.toFixed(1)}" y="${H - 8}" text-anchor="middle">${fmtTime(tm * 1e6, false).slice(0, 5)}</text>`;
    }
    const aStart = ms(a.started_ns), aEnd = a.cleared_ns ? ms(a.cleared_ns) : a.resolved_ns ? ms(a.resolved_ns) : t1;
    const bx = Math.max(L0, x(aStart)), bw = Math.max(2, Math.min(W - R0, x(aEnd)) - bx);
    g += `<rect class="alert-band" x="${bx.toFixed(1)}" y="${T0}" width="${bw.toFixed(1)}" height="${H - T0 - B0}" fill="${COLOUR[a.severity]}" fill-opacity="0.12"/>`;
    g += `<line x1="${x(aStart).toFixed(1)}" x2="${x(aStart).toFixed(1)}" y1="${T0}" y2="${H - B0}" stroke="${COLOUR[a.severity]}" stroke-width="1.5"/>`;
    for (const c of d.history.filter((h) => h.change === "acknowledged")) {
      const xx = x(ms(c.time_ns));
      if (xx >= L0 && xx <= W - R0) g += `<line x1="${xx.toFixed(1)}" x2="${xx.toFixed(1)}" y1="${T0}" y2="${H - B0}" stroke="#5aa9ff" stroke-dasharray="3 3"/><text class="axis" x="${(xx + 3).toFixed(1)}" y="${T0 + 10}">${t("acknowledged")}</text>`;
    }
    for (const [grade, v] of lines) {
      const yy = y(v).toFixed(1);
      g += `<line class="threshold" x1="${L0}" x2="${W - R0}" y1="${yy}" y2="${yy}" stroke="${COLOUR[grade]}" stroke-dasharray="6 4"/><text class="axis" x="${W - R0 + 4}" y="${(+yy + 4).toFixed(1)}" fill="${COLOUR[grade]}">${t(grade)} ${v}</text>`;
    }
    series.forEach((s, i) => {
      let path = "", pen = "M";
      s.time_ns.forEach((tn, j) => {
        const v = s.value[j];
        if (v === null) { pen = "M"; return; }
        path += `${pen}${x(ms(tn)).toFixed(1)},${y(v).toFixed(1)}`; pen = "L";
      });
      g += `<path class="series" d="${path}" fill="none" stroke="${SERIES[i % SERIES.length]}" stroke-width="1.8"/>`;
    });
    const legend = series.map((s, i) => `<span><i style="display:inline-block;width:14px;height:3px;background:${SERIES[i % SERIES.length]};vertical-align:middle"></i> ${esc(s.sensor_id)} (${esc(s.unit)})</span>`).join("");
    return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(t("chart"))}">${g}</svg><div class="series-legend">${legend}</div>`;
  }

  // ---- audit ----------------------------------------------------------------------------------------------------------
  function detailSummary(d) {
    return Object.entries(d || {}).filter(([, v]) => v !== null && v !== "" && v !== undefined)
      .map(([k, v]) => `${esc(k)}: ${esc(typeof v === "object" ? JSON.stringify(v) : v)}`).join(" · ");
  }
  function renderAudit(freshId) {
    const body = $("#audit-table tbody");
    if (!body) return;
    body.innerHTML = S.audit.map((e) => `<tr data-id="${e.id}" data-action="${esc(e.action)}"${e.id === freshId ? ' class="fresh"' : ""}>
      <td class="mono">${fmtTime(e.time_ns)}</td><td>${esc(e.actor)}</td><td>${esc(L[e.role] ? t(e.role) : e.role)}</td>
      <td>${esc(t(e.action))} <span class="mono net">${esc(e.action)}</span></td><td class="mono">${esc(e.target)}</td>
      <td class="detail-cell">${detailSummary(e.detail)}</td></tr>`).join("");
  }

  // ---- silences -------------------------------------------------------------------------------------------------------
  function matcherText(m) {
    const names = { network: t("network"), zone: t("zone"), sensor_id: t("sensor"), subject: t("subject"), rule: t("rule") };
    return Object.entries(m).map(([k, v]) => `${names[k] || k}: ${esc(k === "network" ? t(v) : v)}`).join(" · ");
  }
  function fillSilenceForm() {
    $("#s-scope").innerHTML = S.zones.map((z) => option(`zone:${z.key}`, `${t("zone")}: ${z.zone} · ${t(z.network)}`)).join("") +
      S.sensors.map((s) => option(`sensor:${s.sensor_id}`, `${t("sensor")}: ${s.sensor_id}`)).join("");
    $("#s-duration").innerHTML = durations();
    $("#silence-new").hidden = !can("silence");
  }
  async function addSilence() {
    const [kind, value] = $("#s-scope").value.split(/:(.*)/s);
    const comment = $("#s-comment").value.trim();
    if (!comment) { toast(t("needReason"), true); return; }
    const m = kind === "sensor" ? { sensor_id: value } : { network: value.split("/")[0], zone: value.split("/").slice(1).join("/") };
    try {
      const start = $("#s-start").value;  // local wall time of a planned window; empty = now
      const starts_at = start ? new Date(start).toISOString() : null;
      await api("/api/silences", { method: "POST", body: { ...m, starts_at, duration_minutes: Number($("#s-duration").value), comment } });
      $("#s-comment").value = ""; $("#s-start").value = ""; toast(t("done_silence")); await loadSilences(); await resync();
    } catch (e) { toast(e.message, true); }
  }
  function renderSilences() {
    const body = $("#silence-table tbody");
    body.innerHTML = S.silences.map((s) => `<tr data-id="${esc(s.id)}"><td>${matcherText(s.matchers)}</td><td class="mono">${fmtTime(s.starts_ns)}</td>
      <td class="mono">${fmtTime(s.ends_ns)}</td><td>${esc(s.created_by)}</td><td>${esc(s.comment)}</td><td><span class="pill">${t(s.status)}</span></td>
      <td>${can("silence") && s.status !== "expired" ? `<button type="button" class="end-silence" data-id="${esc(s.id)}">${t("end")}</button>` : ""}</td></tr>`).join("")
      || `<tr><td colspan="7" class="empty">${t("none")}</td></tr>`;
  }
  async function endSilence(id) {
    try { await api(`/api/silences/${encodeURIComponent(id)}`, { method: "DELETE" }); await loadSilences(); await resync(); } catch (e) { toast(e.message, true); }
  }

  // ---- rules -------------------------------------------------------------------------------------------------------
  function selectText(sel) { return Object.entries(sel).map(([k, v]) => `${k}=${v.join("|")}`).join(" "); }
  function renderRules() {
    const r = S.rules;
    if (!r || !S.me) return;
    const eng = can("rules") && r.managed;
    $$(".engineer-only").forEach((el) => { el.hidden = !eng; });
    $("#rules-meta").innerHTML = r.managed
      ? `<span>${both("version")}: <b>v${r.active_version ?? "—"}</b></span><span class="mono net">${esc(r.managed_file)}</span>${r.rollback_to ? `<span class="net">↩ v${r.rollback_to}</span>` : ""}`
      : `<span class="net">${both("notManaged")}</span>`;
    $("#rules-table tbody").innerHTML = r.rules.map((x) => `<tr><td class="mono">${esc(x.id)}${x.enabled ? "" : " (off)"}</td><td>${esc(x.kind)}</td>
      <td class="mono net">${esc(selectText(x.select))}</td><td>${Object.entries(x.params).filter(([, v]) => v !== null).map(([k, v]) =>
        `${esc(k)}: ${esc(typeof v === "object" && !Array.isArray(v) ? levelText(v, "") : Array.isArray(v) ? v.join("–") : v)}`).join("; ")}</td><td>${x.for_s ? `${x.for_s} s` : ""}</td></tr>`).join("");
    $("#rules-rollback").disabled = !r.rollback_to;
    $("#versions-table tbody").innerHTML = r.versions.map((v) => `<tr data-version="${v.version}"><td>v${v.version}${v.active ? ` <span class="pill acknowledged">${t("current")}</span>` : ""}</td>
      <td class="mono">${esc(v.name)}</td><td>${esc(v.uploaded_by)}</td><td class="mono">${esc(v.uploaded_at)}</td><td>${esc(v.comment)}</td>
      <td>${eng ? `<button type="button" class="dry" data-version="${v.version}">${t("dryRun")}</button> <button type="button" class="act" data-version="${v.version}" ${v.active ? "disabled" : ""}>${t("activate")}</button>` : ""}</td></tr>`).join("");
  }
  function showRuleErrors(e) {
    const errs = (e.data && e.data.errors) || [];
    $("#rules-result").innerHTML = `<ul class="errors">${errs.length ? errs.map((x) => `<li class="mono">${esc(x.file || "")}${x.line ? ":" + x.line : ""}${x.field ? " " + esc(x.field) : ""}: ${esc(x.message)}</li>`).join("") : `<li>${esc(e.message)}</li>`}</ul>`;
  }
  function rulesBody() { return { text: $("#rules-text").value, name: $("#rules-name").value || "rules.yaml", comment: $("#rules-comment").value }; }
  async function validateRules() {
    try {
      const v = await api("/api/rules/validate", { method: "POST", body: rulesBody() });
      $("#rules-result").innerHTML = `<p class="ok-msg">✔ ${t("valid")}: ${v.rules.length} ${t("rule")}${v.unmatched.length ? ` · ${esc(v.unmatched.join(", "))} ${t("unmatched")}` : ""}</p>`;
    } catch (e) { showRuleErrors(e); }
  }
  async function uploadRules() {
    try {
      const v = await api("/api/rules/versions", { method: "POST", body: rulesBody() });
      $("#rules-result").innerHTML = `<p class="ok-msg">✔ v${v.version}</p>`;
      await loadRules();
    } catch (e) { showRuleErrors(e); }
  }
  async function dryRun(version) {
    $("#dry-result").innerHTML = `<p class="net">${t("dryRun")} v${version}…</p>`;
    try {
      const r = await api(`/api/rules/versions/${version}/dry-run?hours=${Number($("#dry-hours").value) || 6}`, { method: "POST" });
      const table = (rows) => rows.length ? `<table class="grid"><tr><th>${t("rule")}</th><th>${t("subject")}</th><th>${t("activeRules")}</th><th>${t("candidate")}</th></tr>${rows.map((d) =>
        `<tr><td class="mono">${esc(d.rule_id)}</td><td>${esc(d.subject)}</td><td>${d.active.count} ${d.active.severity ? t(d.active.severity) : ""}</td><td>${d.candidate.count} ${d.candidate.severity ? t(d.candidate.severity) : ""}</td></tr>`).join("")}</table>` : `<p class="empty">${t("none")}</p>`;
      $("#dry-result").innerHTML = `<h3>${t("dryRun")} v${r.version}: ${esc(r.start || "")} → ${esc(r.end || "")} (${r.readings} ${t("readings")})</h3>
        <p>${t("activeRules")}: <b>${r.active.length}</b> · ${t("candidate")}: <b>${r.candidate.length}</b></p><p class="net">${esc(r.note)}</p>
        <h3>${both("added")}</h3>${table(r.diff.added)}<h3>${both("removed")}</h3>${table(r.diff.removed)}<h3>${both("changed")}</h3>${table(r.diff.changed)}`;
    } catch (e) { $("#dry-result").innerHTML = `<p class="errors">${esc(e.message)}</p>`; }
  }
  async function activate(version) {
    if (!confirm(`${t("confirmActivate")} v${version}`)) return;
    try { await api(`/api/rules/versions/${version}/activate`, { method: "POST", body: { comment: $("#rules-comment").value } }); toast(`v${version} ✔`); await loadRules(); } catch (e) { toast(e.message, true); }
  }
  async function rollback() {
    if (!confirm(t("confirmRollback"))) return;
    try { const a = await api("/api/rules/rollback", { method: "POST", body: { comment: "" } }); toast(`↩ v${a.version}`); await loadRules(); } catch (e) { toast(e.message, true); }
  }

  // ---- wiring ---------------------------------------------------------------------------------------------------------
  function showTab(name) {
    S.tab = name;
    $$(".tabs button").forEach((b) => b.classList.toggle("on", b.dataset.tab === name));
    for (const n of ["board", "audit", "silences", "rules"]) $(`#tab-${n}`).hidden = n !== name;
  }
  document.addEventListener("DOMContentLoaded", () => {
    $("#login-form").addEventListener("submit", login);
    $("#logout").addEventListener("click", logout);
    $("#lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("sentinel.lang", lang); applyLang(); if (S.detail) renderDetail(); });
    $$(".tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
    ["#f-network", "#f-zone", "#f-grade", "#f-state"].forEach((id) => $(id).addEventListener("change", renderBoard));
    $("#f-text").addEventListener("input", renderBoard);
    $("#board").addEventListener("click", (ev) => { const r = ev.target.closest(".alert-row"); if (r) openDetail(r.dataset.id); });
    $("#board").addEventListener("keydown", (ev) => { const r = ev.target.closest(".alert-row"); if (r && ev.key === "Enter") openDetail(r.dataset.id); });
    $("#zone-map").addEventListener("click", (ev) => { const z = ev.target.closest("[data-zone]"); if (z) pickZone(z.dataset.zone); });
    $("#zone-list").addEventListener("click", (ev) => { const z = ev.target.closest("[data-zone]"); if (z) pickZone(z.dataset.zone); });
    $("#detail").addEventListener("click", (ev) => {
      const id = ev.target.closest("button") && ev.target.closest("button").id;
      if (id === "detail-close") closeDetail();
      else if (id === "btn-ack") act("acknowledge");
      else if (id === "btn-resolve") act("resolve");
      else if (id === "btn-note") act("note");
      else if (id === "btn-silence") act("silence");
    });
    document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && S.detailId) closeDetail(); });
    $("#s-add").addEventListener("click", addSilence);
    $("#silence-table").addEventListener("click", (ev) => { const b = ev.target.closest(".end-silence"); if (b) endSilence(b.dataset.id); });
    $("#rules-validate").addEventListener("click", validateRules);
    $("#rules-upload").addEventListener("click", uploadRules);
    $("#rules-rollback").addEventListener("click", rollback);
    $("#versions-table").addEventListener("click", (ev) => {
      const b = ev.target.closest("button");
      if (b && b.classList.contains("dry")) dryRun(b.dataset.version);
      if (b && b.classList.contains("act")) activate(b.dataset.version);
    });
    applyLang();
    setInterval(tick, 1000);
    start();
  });
})();
