// swapline browser app: sends the camera over WebRTC, shows the swapped stream that comes back.
//
// Glass-to-glass latency is measured, not guessed: each camera frame is drawn into a canvas
// with its frame id in a strip of black/white blocks at the top edge (no label corner, no face
// there), the canvas is what is sent, and the id is read back from each returned frame. The
// page keeps its own send-time map, so no clock is shared with the server.
"use strict";

const $ = (id) => document.getElementById(id);

// -- the frame-id strip ---------------------------------------------------------------------
// 16 blocks in two rows: the top row is 12 id bits and 4 check bits, the bottom row their
// inverse, so each bit is read as "top lighter than bottom", whatever the codec did to levels.
const ID_BITS = 12;
const CHECK_BITS = 4;
const BITS = ID_BITS + CHECK_BITS;
const MIN_CONTRAST = 60; // a block pair closer than this is unreadable (a face moved over it)

function stripGeometry(width) {
  const block = 2 * Math.max(4, Math.round((width / 640) * 6)); // even, and x0 even: whole chroma samples
  return { block, x0: 2 * Math.round((width - BITS * block) / 4), width: BITS * block, height: 2 * block };
}

function checkBits(id) {
  return (id ^ (id >> 4) ^ (id >> 8) ^ 0x5) & 0xf;
}

function stampId(ctx, id, width) {
  const g = stripGeometry(width);
  const word = (id << CHECK_BITS) | checkBits(id);
  for (let i = 0; i < BITS; i++) {
    const bit = (word >> (BITS - 1 - i)) & 1;
    ctx.fillStyle = bit ? "#fff" : "#000";
    ctx.fillRect(g.x0 + i * g.block, 0, g.block, g.block);
    ctx.fillStyle = bit ? "#000" : "#fff";
    ctx.fillRect(g.x0 + i * g.block, g.block, g.block, g.block);
  }
}

function luma(data, rowWidth, x, y, size) {
  let sum = 0;
  for (let dy = 0; dy < size; dy++) {
    for (let dx = 0; dx < size; dx++) {
      const i = ((y + dy) * rowWidth + x + dx) * 4;
      sum += data[i] * 0.299 + data[i + 1] * 0.587 + data[i + 2] * 0.114;
    }
  }
  return sum / (size * size);
}

function readId(ctx, width) {
  const g = stripGeometry(width);
  const pixels = ctx.getImageData(0, 0, g.width, g.height).data;
  const inner = Math.max(2, Math.floor(g.block / 2));
  const pad = Math.floor((g.block - inner) / 2);
  let word = 0;
  for (let i = 0; i < BITS; i++) {
    const top = luma(pixels, g.width, i * g.block + pad, pad, inner);
    const bottom = luma(pixels, g.width, i * g.block + pad, g.block + pad, inner);
    if (Math.abs(top - bottom) < MIN_CONTRAST) return null;
    word = (word << 1) | (top > bottom ? 1 : 0);
  }
  const id = word >> CHECK_BITS;
  return (word & 0xf) === checkBits(id) ? id : null;
}

// -- state and stats ------------------------------------------------------------------------
const state = { token: null, config: null, source: null, pc: null, peer: null, camera: null, running: false };
const sendTimes = new Map(); // frame id -> capture time (ms, performance.now clock)
const latencies = []; // the last few hundred glass-to-glass latencies, ms
const returnTimes = []; // display times of returned frames over the last 2 s
let nextId = 0;

// Read by people (the overlay) and by tests and the benchmark (window.swaplineStats).
const stats = (window.swaplineStats = {
  state: "idle", sent: 0, returned: 0, matched: 0, unmatched: 0,
  p50: 0, p95: 0, fps: 0, path: null, server: null, browser: null, error: null, peer: null, sourceReady: false,
});

function percentile(sorted, p) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((sorted.length * p) / 100) - 1)];
}

function resetStats() {
  latencies.length = 0;
  returnTimes.length = 0;
  Object.assign(stats, { sent: 0, returned: 0, matched: 0, unmatched: 0, p50: 0, p95: 0, fps: 0 });
}
window.swaplineResetStats = resetStats;

function updateStats() {
  const sorted = [...latencies].sort((a, b) => a - b);
  stats.p50 = percentile(sorted, 50);
  stats.p95 = percentile(sorted, 95);
  const now = performance.now();
  while (returnTimes.length && now - returnTimes[0] > 2000) returnTimes.shift();
  stats.fps = returnTimes.length > 1 ? ((returnTimes.length - 1) * 1000) / (returnTimes.at(-1) - returnTimes[0]) : 0;
  const lines = [`${stats.fps.toFixed(1)} fps back`];
  if ($("measure").checked) {
    lines.push(latencies.length
      ? `glass-to-glass p50 ${stats.p50.toFixed(0)} ms  p95 ${stats.p95.toFixed(0)} ms`
      : "glass-to-glass: waiting for stamped frames");
    lines.push(`frames matched ${stats.matched}  unread ${stats.unmatched}`);
  }
  if (stats.browser) {
    const b = stats.browser;
    lines.push(`browser encode ${b.encodeMs.toFixed(0)} ms  jitter buffer ${b.jitterMs.toFixed(0)} ms  decode ${b.decodeMs.toFixed(0)} ms`);
  }
  if (stats.server) {
    const s = stats.server;
    lines.push(`server ${s.output_fps.toFixed(1)} fps  p95 ${s.server_p95_ms.toFixed(0)} ms  dropped ${s.dropped}`);
  }
  $("overlay").textContent = state.running ? lines.join("\n") : "";
}

// -- talking to the server ------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, { method = "GET", body, type } = {}) {
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (type) headers["Content-Type"] = type;
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (err) {
    throw new ApiError(0, `the server cannot be reached (${err.message})`);
  }
  let data = {};
  try { data = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) throw new ApiError(response.status, data.error || response.statusText);
  return data;
}

// The swapper's advice on the chosen photo (say, glasses it will copy), after a status line.
const withNotes = (text, notes) => (notes && notes.length ? `${text} Note: ${notes.join(" ")}.` : text);

function say(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
  if (error) stats.error = text;
}

function options() {
  return {
    faces: $("faces").value, swapper: $("swapper").value, corner: $("corner").value, keep_mouth: $("mouth").checked,
  };
}

function fill(select, values, chosen) {
  select.replaceChildren(...values.map((v) => new Option(v, v, v === chosen, v === chosen)));
}

async function loadConfig() {
  try {
    state.config = await api("/api/config");
  } catch (err) {
    if (err.status === 401) {
      $("token-box").hidden = false;
      say(`Refused: ${err.message}`, true);
    } else {
      say(err.message, true);
    }
    return;
  }
  $("token-box").hidden = true;
  const c = state.config;
  fill($("faces"), c.faces, c.defaults.faces);
  fill($("swapper"), c.swappers, c.defaults.swapper);
  fill($("corner"), c.corners, c.defaults.corner);
  $("mouth").checked = c.defaults.keep_mouth;
  stats.error = null;
  say(state.source ? "Ready: start the camera." : "Choose a photo of the face to use.");
}

// -- the source photo -----------------------------------------------------------------------
async function choosePhoto(file) {
  if (!file || !state.config) return;
  say("Finding the face in the photo…");
  stats.sourceReady = false;
  let answer;
  try {
    answer = await api("/api/source", { method: "POST", body: file, type: file.type || "image/jpeg" });
  } catch (err) {
    say(`Photo refused: ${err.message}`, true);
    return;
  }
  await drawPreview(file, answer);
  state.source = answer.source;
  stats.sourceReady = true;
  $("start").disabled = state.running;
  if (state.running) {
    await sendOptions();
  } else {
    say("Ready: start the camera.");
  }
}

async function drawPreview(file, answer) {
  const canvas = $("preview");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  let bitmap;
  try { bitmap = await createImageBitmap(file); } catch { return; }
  const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
  const w = bitmap.width * scale, h = bitmap.height * scale;
  const x = (canvas.width - w) / 2, y = (canvas.height - h) / 2;
  ctx.drawImage(bitmap, x, y, w, h);
  const k = (bitmap.width / answer.width) * scale; // the server's copy may be scaled down
  const [x1, y1, x2, y2] = answer.box;
  ctx.strokeStyle = "#4aa3ff";
  ctx.lineWidth = 2;
  ctx.strokeRect(x + x1 * k, y + y1 * k, (x2 - x1) * k, (y2 - y1) * k);
}

// -- the camera, out and back ---------------------------------------------------------------
// Where the browser can hand us the camera's own frames (MediaStreamTrackProcessor), the strip is
// written into the frame's pixels and nothing else is touched: no RGB round trip, so colours
// and levels reach the server as the camera made them. Elsewhere the camera is drawn into a
// canvas that is sent instead.
function newId(captured) {
  const id = nextId++ & ((1 << ID_BITS) - 1);
  sendTimes.set(id, captured);
  stats.sent++;
  if (sendTimes.size > 300) { // ids come back within a second or not at all
    for (const key of [...sendTimes.keys()].slice(0, sendTimes.size - 150)) sendTimes.delete(key);
  }
  return id;
}

const YUV_CHROMA = { I420: [2, 2], I420A: [2, 2], I422: [2, 1], I444: [1, 1] }; // subsampling x, y

// The strip written into a copy of the frame's planes; null for a layout it does not know.
async function stampFrame(frame, id) {
  const format = frame.format;
  const rgb = ["RGBA", "RGBX", "BGRA", "BGRX"].includes(format);
  if (!rgb && !(format in YUV_CHROMA) && format !== "NV12") return null;
  const buffer = new Uint8Array(frame.allocationSize());
  const layout = await frame.copyTo(buffer);
  const width = frame.visibleRect.width, height = frame.visibleRect.height;
  const g = stripGeometry(width);
  const full = frame.colorSpace?.fullRange === true;
  const [lo, hi] = rgb || full ? [0, 255] : [16, 235];
  const word = (id << CHECK_BITS) | checkBits(id);
  const fill = (plane, x, y, w, h, value, step = 1) => {
    const { offset, stride } = layout[plane];
    for (let row = y; row < y + h; row++) {
      const start = offset + row * stride + x * step;
      if (step === 1) buffer.fill(value, start, start + w);
      else for (let i = 0; i < w; i++) buffer.fill(value, start + i * step, start + i * step + 3);
    }
  };
  for (let i = 0; i < BITS; i++) {
    const bit = (word >> (BITS - 1 - i)) & 1;
    const x = g.x0 + i * g.block;
    fill(0, x, 0, g.block, g.block, bit ? hi : lo, rgb ? 4 : 1);
    fill(0, x, g.block, g.block, g.block, bit ? lo : hi, rgb ? 4 : 1);
  }
  if (format === "NV12") {
    fill(1, g.x0, 0, g.width, g.height / 2, 128); // interleaved U and V, half height: byte x = pixel x
  } else if (!rgb) {
    const [sx, sy] = YUV_CHROMA[format];
    for (const plane of [1, 2]) fill(plane, g.x0 / sx, 0, g.width / sx, g.height / sy, 128); // grey, no tint
  }
  return new VideoFrame(buffer, {
    format, codedWidth: width, codedHeight: height, layout, timestamp: frame.timestamp,
    duration: frame.duration ?? undefined, colorSpace: frame.colorSpace?.toJSON?.(),
  });
}

function stampedTrack(cameraTrack) {
  const processor = new MediaStreamTrackProcessor({ track: cameraTrack, maxBufferSize: 1 });
  const generator = new MediaStreamTrackGenerator({ kind: "video" });
  const stamp = new TransformStream({
    async transform(frame, controller) {
      if (!$("measure").checked) { controller.enqueue(frame); return; }
      const captured = performance.now();
      let stamped = null;
      try {
        stamped = await stampFrame(frame, nextId & ((1 << ID_BITS) - 1));
      } catch { /* an odd layout: send it as it is */ }
      if (stamped) {
        newId(captured);
        frame.close();
        controller.enqueue(stamped);
      } else {
        controller.enqueue(frame);
      }
    },
  });
  processor.readable.pipeThrough(stamp).pipeTo(generator.writable).catch(() => {});
  return generator;
}

function canvasTrack(cameraTrack) {
  const camera = $("camera"), canvas = document.createElement("canvas");
  camera.srcObject = new MediaStream([cameraTrack]);
  camera.play();
  const track = canvas.captureStream(0).getVideoTracks()[0]; // a frame exactly when one is drawn
  const draw = (now, meta) => {
    if (!state.running) return;
    if (canvas.width !== camera.videoWidth || canvas.height !== camera.videoHeight) {
      canvas.width = camera.videoWidth;
      canvas.height = camera.videoHeight;
    }
    const ctx = canvas.getContext("2d");
    ctx.drawImage(camera, 0, 0, canvas.width, canvas.height);
    if ($("measure").checked) stampId(ctx, newId(meta.captureTime ?? performance.now()), canvas.width);
    track.requestFrame();
    camera.requestVideoFrameCallback(draw);
  };
  camera.requestVideoFrameCallback(draw);
  return track;
}

const readCanvas = document.createElement("canvas");
function onSwappedFrame(now, meta) {
  if (!state.running) return;
  const video = $("swapped");
  const shown = meta.expectedDisplayTime ?? now;
  stats.returned++;
  returnTimes.push(shown);
  if ($("measure").checked && video.videoWidth) {
    const g = stripGeometry(video.videoWidth);
    readCanvas.width = g.width;
    readCanvas.height = g.height;
    const ctx = readCanvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(video, g.x0, 0, g.width, g.height, 0, 0, g.width, g.height);
    const id = readId(ctx, video.videoWidth);
    if (id !== null && sendTimes.has(id)) {
      latencies.push(shown - sendTimes.get(id));
      if (latencies.length > 300) latencies.shift();
      sendTimes.delete(id);
      stats.matched++;
    } else {
      stats.unmatched++;
    }
  }
  video.requestVideoFrameCallback(onSwappedFrame);
}

function iceGathered(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, timeoutMs);
  });
}

async function start() {
  if (!state.source || state.running) return;
  $("start").disabled = true;
  say("Starting the camera…");
  stats.error = null;
  try {
    state.camera = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } }, audio: false,
    });
  } catch (err) {
    say(`No camera: ${err.message}`, true);
    $("start").disabled = false;
    return;
  }
  const cameraTrack = state.camera.getVideoTracks()[0];
  state.running = true;
  resetStats();
  const frames = "MediaStreamTrackProcessor" in window && "MediaStreamTrackGenerator" in window;
  stats.path = frames ? "frames" : "canvas";
  state.sendTrack = frames ? stampedTrack(cameraTrack) : canvasTrack(cameraTrack);
  const out = new MediaStream([state.sendTrack]);
  $("sent").srcObject = out;

  const pc = (state.pc = new RTCPeerConnection({ iceServers: state.config.ice_servers }));
  pc.addTrack(state.sendTrack, out);
  pc.addEventListener("track", (event) => {
    if ("jitterBufferTarget" in event.receiver) event.receiver.jitterBufferTarget = 0; // as little delay as it can
    const video = $("swapped");
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
    video.requestVideoFrameCallback(onSwappedFrame);
  });
  pc.addEventListener("connectionstatechange", () => {
    stats.state = pc.connectionState;
    if (pc.connectionState === "failed") { say("The connection failed.", true); stop(false); }
  });
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc, 3000);
    const answer = await api("/api/offer", {
      method: "POST", type: "application/json",
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", source: state.source, options: options() }),
    });
    state.peer = stats.peer = answer.peer;
    state.notes = answer.notes;
    await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
  } catch (err) {
    say(err.status === 503 ? `Refused: ${err.message}` : `Could not connect: ${err.message}`, true);
    stop(false);
    return;
  }
  $("stop").disabled = false;
  $("vcam").disabled = false;
  say(withNotes("Swapping. The returned stream is labelled AI-generated.", state.notes));
}

async function stop(tellServer = true) {
  const peer = state.peer;
  state.running = false;
  state.pc?.close();
  state.camera?.getTracks().forEach((t) => t.stop());
  state.sendTrack?.stop();
  $("sent").srcObject = null;
  Object.assign(state, { pc: null, peer: null, camera: null, sendTrack: null });
  lastRtp = null;
  stats.state = "idle";
  $("swapped").srcObject = null;
  $("stop").disabled = true;
  $("vcam").checked = false;
  $("vcam").disabled = true;
  $("start").disabled = !state.source;
  if (tellServer && peer) {
    try {
      await api("/api/close", { method: "POST", type: "application/json", body: JSON.stringify({ peer }) });
    } catch { /* already gone */ }
    say("Stopped.");
  }
  updateStats();
}

// Where the browser's own share of the latency goes: per-frame encode, jitter-buffer and decode
// time over the last second, from WebRTC's statistics.
let lastRtp = null;
async function pollBrowser() {
  if (!state.pc) return;
  const now = {};
  (await state.pc.getStats()).forEach((r) => {
    if (r.type === "outbound-rtp" && r.kind === "video") Object.assign(now, { enc: r.totalEncodeTime, encN: r.framesEncoded });
    if (r.type === "inbound-rtp" && r.kind === "video") {
      Object.assign(now, { jit: r.jitterBufferDelay, jitN: r.jitterBufferEmittedCount, dec: r.totalDecodeTime, decN: r.framesDecoded });
    }
  });
  const per = (a, n) => (lastRtp && now[n] > lastRtp[n] ? ((now[a] - lastRtp[a]) * 1000) / (now[n] - lastRtp[n]) : 0);
  if (lastRtp) stats.browser = { encodeMs: per("enc", "encN"), jitterMs: per("jit", "jitN"), decodeMs: per("dec", "decN") };
  lastRtp = now;
}

async function pollServer() {
  if (!state.running || !state.peer) return;
  pollBrowser().catch(() => {});
  try {
    stats.server = await api(`/api/stats?peer=${encodeURIComponent(state.peer)}`);
    if (stats.server.error) say(`The server stopped swapping: ${stats.server.error}`, true);
  } catch (err) {
    if (err.status === 404) { say(err.message, true); stop(false); }
  }
}

// Switches and photo changes reach the server one request at a time, the last state winning
// (two requests in flight could otherwise finish in either order).
let optionsBusy = false, optionsAgain = false;
async function sendOptions() {
  if (!state.running) return;
  if (optionsBusy) { optionsAgain = true; return; }
  optionsBusy = true;
  try {
    let answer;
    do {
      optionsAgain = false;
      const body = JSON.stringify({ peer: state.peer, source: state.source, options: options() });
      answer = await api("/api/options", { method: "POST", type: "application/json", body });
    } while (optionsAgain && state.running);
    if (answer.notes) state.notes = answer.notes;
    say(withNotes("Switched.", state.notes));
  } catch (err) {
    say(err.message, true);
  } finally {
    optionsBusy = false;
  }
}

async function toggleVcam() {
  const box = $("vcam");
  try {
    await api("/api/vcam", { method: "POST", type: "application/json", body: JSON.stringify({ peer: state.peer, on: box.checked }) });
    say(box.checked ? "Sending to the virtual camera: pick it in your video-call app." : "Virtual camera off.");
  } catch (err) {
    box.checked = false;
    say(err.message, true);
  }
}

// -- wiring ---------------------------------------------------------------------------------
function init() {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromLink) state.token = fromLink; // a #fragment never reaches the server's logs
  $("token-box").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    loadConfig();
  });
  $("photo").addEventListener("change", (event) => choosePhoto(event.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    choosePhoto(event.dataTransfer.files[0]);
  });
  $("start").addEventListener("click", start);
  $("stop").addEventListener("click", () => stop(true));
  for (const id of ["faces", "swapper", "corner", "mouth"]) $(id).addEventListener("change", sendOptions);
  $("vcam").addEventListener("change", toggleVcam);
  window.addEventListener("pagehide", () => { // free the server's place now, not after its idle timeout
    if (!state.peer) return;
    const headers = { "Content-Type": "application/json" };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    fetch("/api/close", { method: "POST", keepalive: true, headers, body: JSON.stringify({ peer: state.peer }) });
  });
  setInterval(updateStats, 500);
  setInterval(pollServer, 1000);
  window.swaplineGrab = () => grab($("swapped"));
  window.swaplineGrabRaw = () => grab($("sent"));
  loadConfig();
}

function grab(video) {
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return canvas.toDataURL("image/png");
}

init();
