// okpose browser client: webcam -> JPEG over the websocket -> skeleton overlay. No build step.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const video = $("cam"), view = $("view"), ctx = view.getContext("2d"), hud = $("hud"), status = $("status");
  const grab = document.createElement("canvas"), gctx = grab.getContext("2d");
  const params = new URLSearchParams(location.search);
  const stats = (window.okposeStats = { sent: 0, results: 0, dropped: 0, errors: 0, personsSeen: 0, lastLatency: 0 });
  let ws = null, stream = null, timer = null, skeleton = [], last = null, inFlight = 0, sentAt = new Map();
  let t0 = performance.now();

  const color = (id) => (id == null ? "hsl(45,100%,55%)" : `hsl(${Math.floor(((id * 0.618033988749895) % 1) * 360)},90%,55%)`);

  // The API key never goes into a URL: it comes from the key field or the page's #api_key= fragment
  // (fragments are not sent to servers), is kept for this tab only, and travels in the websocket's
  // Sec-WebSocket-Protocol header ("okpose.key." + base64url(key)).
  const keyField = $("key");
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("api_key")) {
    sessionStorage.setItem("okpose.key", hash.get("api_key"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  keyField.value = sessionStorage.getItem("okpose.key") || "";
  keyField.onchange = () => sessionStorage.setItem("okpose.key", keyField.value);
  const b64url = (s) => btoa(String.fromCharCode(...new TextEncoder().encode(s)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  function wsUrl() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/stream`;
  }

  function wsProtocols() {
    const key = keyField.value.trim();
    return key ? ["okpose", "okpose.key." + b64url(key)] : ["okpose"];
  }

  function draw() {
    if (video.readyState >= 2) ctx.drawImage(video, 0, 0, view.width, view.height);
    if (last) {
      const sx = view.width / last.width, sy = view.height / last.height;
      ctx.lineWidth = Math.max(2, view.width / 320);
      for (const p of last.persons) {
        const c = color(p.track_id), k = p.keypoints;
        ctx.strokeStyle = c; ctx.fillStyle = c;
        for (const [a, b] of skeleton) {
          if (k[a][2] > 0.2 && k[b][2] > 0.2) {
            ctx.beginPath(); ctx.moveTo(k[a][0] * sx, k[a][1] * sy); ctx.lineTo(k[b][0] * sx, k[b][1] * sy); ctx.stroke();
          }
        }
        for (const [x, y, s] of k) if (s > 0.2) { ctx.beginPath(); ctx.arc(x * sx, y * sy, 3, 0, 2 * Math.PI); ctx.fill(); }
        ctx.font = "14px sans-serif";
        ctx.fillText(`#${p.track_id}`, p.box[0] * sx, Math.max(14, p.box[1] * sy - 4));
      }
    }
    const el = (performance.now() - t0) / 1000;
    const t = (last && last.timings_ms) || {};
    hud.textContent =
      `fps ${(stats.results / el).toFixed(1)}  e2e ${stats.lastLatency.toFixed(0)} ms\n` +
      `sent ${stats.sent} (${grab.width}x${grab.height})  dropped ${stats.dropped}  errors ${stats.errors}\n` +
      `detect ${(t.detect || 0).toFixed(1)}  pose ${(t.pose || 0).toFixed(1)}  track ${(t.track || 0).toFixed(2)} ms\n` +
      `persons ${last ? last.persons.length : 0}`;
    if (stream) requestAnimationFrame(draw);
  }

  function sendFrame() {
    if (!ws || ws.readyState !== WebSocket.OPEN || video.readyState < 2 || inFlight >= 2) return;
    // downscale to the chosen long side before encoding (the server would not use more pixels)
    const maxSide = Number($("maxside").value) || 0, vw = video.videoWidth, vh = video.videoHeight;
    const r = maxSide > 0 ? Math.min(1, maxSide / Math.max(vw, vh)) : 1;
    grab.width = Math.round(vw * r); grab.height = Math.round(vh * r);
    gctx.drawImage(video, 0, 0, grab.width, grab.height);
    grab.toBlob((blob) => {
      if (!blob || !ws || ws.readyState !== WebSocket.OPEN) return;
      sentAt.set(stats.sent, performance.now());
      stats.sent += 1; inFlight += 1;
      ws.send(blob);
    }, "image/jpeg", 0.8);
  }

  function connect() {
    ws = new WebSocket(wsUrl(), wsProtocols());
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { status.textContent = "streaming"; status.className = ""; sentAt.clear(); stats.sent = 0; inFlight = 0;
      ws.send(JSON.stringify({ type: "config", detect_interval: Number($("interval").value) })); };
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === "hello") { skeleton = m.model.skeleton; return; }
      for (const d of m.dropped || []) { stats.dropped += 1; inFlight = Math.max(0, inFlight - 1); sentAt.delete(d); }
      if (m.type === "result") {
        stats.results += 1; inFlight = Math.max(0, inFlight - 1);
        stats.personsSeen += m.persons.length;
        if (sentAt.has(m.frame)) { stats.lastLatency = performance.now() - sentAt.get(m.frame); sentAt.delete(m.frame); }
        last = m; window.okposeLast = m;
      } else if (m.type === "error") {
        stats.errors += 1; inFlight = Math.max(0, inFlight - 1);
        status.textContent = `error: ${m.error}`; status.className = "err";
      }
    };
    ws.onclose = (ev) => {
      if (!stream) return;
      status.textContent = `disconnected (${ev.code} ${ev.reason || ""}) — reconnecting`; status.className = "err";
      setTimeout(() => stream && connect(), 1000);
    };
  }

  $("start").onclick = async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    } catch (e) { status.textContent = `camera unavailable: ${e}`; status.className = "err"; return; }
    video.srcObject = stream; await video.play();
    view.width = video.videoWidth || 640; view.height = video.videoHeight || 480;
    t0 = performance.now();
    connect();
    timer = setInterval(sendFrame, 1000 / Number($("fps").value));
    $("start").disabled = true; $("stop").disabled = false;
    requestAnimationFrame(draw);
  };
  $("stop").onclick = () => {
    clearInterval(timer); if (ws) ws.close(); ws = null;
    if (stream) stream.getTracks().forEach((t) => t.stop()); stream = null;
    $("start").disabled = false; $("stop").disabled = true; status.textContent = "stopped";
  };
  window.okposeDraw = draw; window.okposeColor = color; // hooks for tests
  if (params.get("maxside")) $("maxside").value = params.get("maxside");
  if (params.get("autostart") === "1") $("start").click();
})();
