// structdiff studio: one live session per tab over a WebSocket; audio in the browser.
"use strict";

const $ = (id) => document.getElementById(id);
const WINDOW_S = 10;          // seconds of music the roll shows
const NOW_AT = 0.82;          // where "now" sits across the roll
const LOW = 28, HIGH = 100;   // pitch range of the roll
const STINGER_KEYS = ["q", "w", "e", "r"];
const COLORS = ["#5ac8fa", "#ffd166", "#b388ff", "#5fd38d", "#ff9f6e", "#f78fb3",
                "#9ad0ec", "#c3e88d", "#ffcb6b", "#ff7a59", "#82aaff", "#c792ea",
                "#89ddff", "#f07178", "#ffd166", "#addb67"];

const S = {
  ws: null, hello: null, playing: false, notes: [], open: new Map(), bars: [],
  lastT: 0, lastArrival: 0, pending: null, current: null, underruns: 0, audio: null,
  played: 0,
};

// -- audio --------------------------------------------------------------------------------

class SimpleSynth {  // used only when the server has no SoundFont: oscillators and noise
  constructor(ctx) {
    this.ctx = ctx; this.voices = new Map(); this.out = ctx.createGain();
    this.out.gain.value = 0.25; this.out.connect(ctx.destination);
  }
  noteOn(ch, note, vel) {
    const t = this.ctx.currentTime, g = this.ctx.createGain();
    g.connect(this.out);
    const level = (vel / 127) * 0.3;
    if (ch === 9) {  // drums: a short noise burst
      const len = Math.floor(this.ctx.sampleRate * 0.12);
      const buf = this.ctx.createBuffer(1, len, this.ctx.sampleRate);
      const d = buf.getChannelData(0);
      for (let i = 0; i < len; i++) d[i] = (Math.random() * 2 - 1) * (1 - i / len) ** 3;
      const src = this.ctx.createBufferSource(); src.buffer = buf;
      g.gain.value = note < 40 ? level * 2 : level; src.connect(g); src.start(t);
      return;
    }
    const osc = this.ctx.createOscillator();
    osc.type = ch % 3 === 0 ? "triangle" : ch % 3 === 1 ? "sine" : "sawtooth";
    osc.frequency.value = 440 * 2 ** ((note - 69) / 12);
    g.gain.setValueAtTime(0, t); g.gain.linearRampToValueAtTime(level, t + 0.01);
    g.gain.setTargetAtTime(level * 0.6, t + 0.05, 0.2);
    osc.connect(g); osc.start(t);
    this.voices.set(`${ch}:${note}`, { osc, g });
  }
  noteOff(ch, note) {
    const v = this.voices.get(`${ch}:${note}`);
    if (!v) return;
    const t = this.ctx.currentTime;
    v.g.gain.cancelScheduledValues(t); v.g.gain.setTargetAtTime(0, t, 0.05);
    v.osc.stop(t + 0.3); this.voices.delete(`${ch}:${note}`);
  }
  program() {}
  allOff() { for (const k of [...this.voices.keys()]) this.noteOff(...k.split(":").map(Number)); }
}

class FluidSynth {  // js-synthesizer (FluidSynth in WebAssembly) with the served SoundFont
  static async create(ctx) {
    await JSSynth.waitForReady();
    // FluidSynth logs its WebAssembly build's stubs ("fluid_file_test is a stub") as errors
    JSSynth.disableLogging();
    const synth = new JSSynth.Synthesizer();
    synth.init(ctx.sampleRate);
    const node = synth.createAudioNode(ctx, 2048);
    node.connect(ctx.destination);
    const response = await fetch("/soundfont.sf2");
    if (!response.ok) throw new Error("no SoundFont");
    await synth.loadSFont(await response.arrayBuffer());
    const me = new FluidSynth(); me.synth = synth; me.node = node; return me;
  }
  noteOn(ch, note, vel) { this.synth.midiNoteOn(ch, note, vel); }
  noteOff(ch, note) { this.synth.midiNoteOff(ch, note); }
  program(ch, p) { if (ch !== 9) this.synth.midiProgramChange(ch, p); }
  allOff() { for (let ch = 0; ch < 16; ch++) this.synth.midiAllNotesOff(ch); }
}

async function startAudio() {
  if (S.audio) return;
  const ctx = new AudioContext();
  if (ctx.state === "suspended") await ctx.resume().catch(() => {});
  if (S.hello && S.hello.soundfont && window.JSSynth) {
    $("audio").textContent = "audio: loading the SoundFont…";
    try {
      S.audio = await FluidSynth.create(ctx);
      $("audio").textContent = "audio: FluidSynth (WebAssembly) with the General MIDI SoundFont";
      return;
    } catch (e) {
      note(`SoundFont failed to load (${e.message}): playing a simple synth`, "info");
    }
  }
  S.audio = new SimpleSynth(ctx);
  $("audio").textContent = "audio: simple built-in synth (the server found no General MIDI "
    + "SoundFont: apt-get install timgm6mb-soundfont)";
}

// -- the connection -----------------------------------------------------------------------

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  S.ws = ws;
  ws.onopen = () => setConnection("connected", "on");
  ws.onclose = () => { setConnection("disconnected", "bad"); setPlaying(false); };
  ws.onerror = () => setConnection("no server", "bad");
  ws.onmessage = (m) => {
    let msg;
    try { msg = JSON.parse(m.data); } catch { return; }
    if (msg.type === "event") onEvent(msg.event);
    else if (msg.type === "hello") onHello(msg);
    else if (msg.type === "status") setPlaying(msg.playing);
    else if (msg.type === "error") note(msg.message);
    else if (msg.type === "full") { note(msg.message); setPlaying(false); }
  };
}

function send(obj) {
  if (S.ws && S.ws.readyState === WebSocket.OPEN) S.ws.send(JSON.stringify(obj));
  else note("not connected to the studio server");
}

function setConnection(text, cls) {
  const el = $("connection"); el.textContent = text; el.className = `badge ${cls}`;
}

function note(text, cls = "") {
  const div = document.createElement("div");
  div.textContent = text; if (cls) div.className = cls;
  $("messages").appendChild(div);
  setTimeout(() => div.remove(), 6000);
}

// -- what the server says ----------------------------------------------------------------

function onHello(h) {
  S.hello = h;
  $("cue-name").textContent = `${h.source} · ${h.tempo} bpm · ${h.meter.join("/")} · `
    + `session ${h.session}`;
  const states = $("states"); states.replaceChildren();
  h.states.forEach((st, i) => {
    const b = document.createElement("button");
    b.dataset.state = st.name; b.id = `state-${st.name}`;
    b.title = st.mood ? `${st.mood}, intensity ${st.intensity}` : `intensity ${st.intensity}`;
    b.innerHTML = `<span></span><kbd>${i < 9 ? i + 1 : ""}</kbd>`;
    b.firstChild.textContent = st.name;
    b.onclick = () => pressState(st.name);
    states.appendChild(b);
  });
  const stingers = $("stingers"); stingers.replaceChildren();
  h.stingers.forEach((name, i) => {
    const b = document.createElement("button");
    b.id = `stinger-${name}`;
    b.innerHTML = `<span></span><kbd>${(STINGER_KEYS[i] || "").toUpperCase()}</kbd>`;
    b.firstChild.textContent = name;
    b.onclick = () => pressStinger(name);
    stingers.appendChild(b);
  });
  for (const [id, file] of [["dl-midi", "song.mid"], ["dl-stems", "stems.zip"],
                            ["dl-wav", "song.wav"]]) {
    $(id).href = `/api/sessions/${h.session}/${file}`;
  }
  const style = $("style"); style.replaceChildren();
  for (const name of h.styles) {
    const o = document.createElement("option"); o.textContent = name; o.value = name;
    if (name === h.style) o.selected = true;
    style.appendChild(o);
  }
  if (!h.style) {
    const o = document.createElement("option"); o.textContent = "(the model's choice)";
    o.value = ""; o.selected = true; o.disabled = true; style.prepend(o);
  }
  const instruments = $("instruments"); instruments.replaceChildren();
  for (const { role, program } of h.roles) {
    const label = document.createElement("label");
    label.textContent = role;
    if (role === "drums") { const b = document.createElement("b"); b.textContent = "GM drum kit"; label.appendChild(b); }
    else {
      const sel = document.createElement("select"); sel.id = `program-${role}`;
      h.program_names.forEach((name, p) => {
        const o = document.createElement("option"); o.value = p; o.textContent = `${p} ${name}`;
        if (p === program) o.selected = true; sel.appendChild(o);
      });
      sel.onchange = () => send({ op: "instrument", role, program: Number(sel.value) });
      label.appendChild(sel);
    }
    instruments.appendChild(label);
  }
  markCurrent(h.start);
  updateDownloads();
}

function onEvent(ev) {
  S.lastT = ev.t; S.lastArrival = performance.now();
  const a = S.audio;
  if (ev.type === "note_on") {
    if (a) a.noteOn(ev.ch, ev.note, ev.vel);
    const n = { t0: ev.t, t1: null, pitch: ev.note, ch: ev.ch };
    S.notes.push(n); S.open.set(`${ev.ch}:${ev.note}`, n);
  } else if (ev.type === "note_off") {
    if (a) a.noteOff(ev.ch, ev.note);
    const n = S.open.get(`${ev.ch}:${ev.note}`);
    if (n) { n.t1 = ev.t; S.open.delete(`${ev.ch}:${ev.note}`); }
  } else if (ev.type === "program") {
    if (a) a.program(ev.ch, ev.program);
  } else if (ev.type === "bar") {
    const [state, section, ...chords] = (ev.text || "").split(" ");
    S.bars.push({ t: ev.t, index: ev.bar, state, section, chords: chords.join(" ") });
    S.played += 1;
    $("now-state").textContent = state; $("now-section").textContent = section || "–";
    $("now-chords").textContent = chords.join(" ") || "–";
    $("now-bar").textContent = ev.bar + 1;
    markCurrent(state);
    if (ev.intensity !== undefined && !S.dragging) showIntensity(ev.intensity);
    updateDownloads();
  } else if (ev.type === "underrun") {
    S.underruns += 1; $("underruns").textContent = `underruns: ${S.underruns}`;
  }
  const keep = ev.t - WINDOW_S * 1.5;
  if (S.notes.length > 4000 || (S.notes.length && S.notes[0].t1 !== null && S.notes[0].t1 < keep)) {
    S.notes = S.notes.filter((n) => n.t1 === null || n.t1 >= keep);
    S.bars = S.bars.filter((b) => b.t >= keep - 10);
  }
}

function markCurrent(state) {
  S.current = state;
  if (S.pending === state) S.pending = null;
  for (const b of $("states").children) {
    b.classList.toggle("current", b.dataset.state === state);
    b.classList.toggle("pending", b.dataset.state === S.pending);
  }
}

function setPlaying(on) {
  S.playing = on;
  $("play").disabled = on; $("stop").disabled = !on;
  if (!on && S.audio) S.audio.allOff();
}

function updateDownloads() {
  for (const id of ["dl-midi", "dl-stems", "dl-wav"]) $(id).classList.toggle("off", S.played === 0);
}

// -- what the user does ----------------------------------------------------------------

async function play() {
  await startAudio();
  S.notes = []; S.open.clear(); S.bars = []; S.played = 0; S.underruns = 0;
  send({ op: "play" });
}

function stop() { send({ op: "stop" }); }

function pressState(name) {
  if (!S.playing) { note("press play first"); return; }
  const transition = $("transition").value || null;
  send({ op: "state", name, at: $("at").value, transition });
  S.pending = name; markCurrent(S.current);
}

function pressStinger(name) {
  if (!S.playing) { note("press play first"); return; }
  send({ op: "stinger", name });
}

function showIntensity(x) {
  $("intensity").value = x; $("intensity-value").textContent = Number(x).toFixed(2);
}

function sendIntensity() {
  const x = Number($("intensity").value);
  showIntensity(x);
  if (S.playing) send({ op: "intensity", value: x });
}

$("style").onchange = () => send({ op: "style", name: $("style").value });
$("play").onclick = play;
$("stop").onclick = stop;
$("intensity").oninput = () => { S.dragging = true; showIntensity($("intensity").value); };
$("intensity").onchange = () => { S.dragging = false; sendIntensity(); };
$("cue-file").onchange = async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  if (file.size > 200000) { note("that file is too large for a cue sheet"); return; }
  send({ op: "cue", text: await file.text() });
  e.target.value = "";
};

document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT" || e.metaKey || e.ctrlKey) return;
  const k = e.key.toLowerCase();
  if (k === " ") { e.preventDefault(); (S.playing ? stop : play)(); return; }
  if (/^[1-9]$/.test(k) && S.hello) {
    const st = S.hello.states[Number(k) - 1]; if (st) pressState(st.name); return;
  }
  const i = STINGER_KEYS.indexOf(k);
  if (i >= 0 && S.hello && S.hello.stingers[i]) { pressStinger(S.hello.stingers[i]); return; }
  if (k === "arrowup" || k === "arrowdown") {
    e.preventDefault();
    const x = Math.min(1, Math.max(0, Number($("intensity").value) + (k === "arrowup" ? 0.1 : -0.1)));
    $("intensity").value = x; sendIntensity();
  }
});

// -- the piano roll ---------------------------------------------------------------------

const canvas = $("roll"), g = canvas.getContext("2d");

function draw() {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  }
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.fillStyle = "#14161c"; g.fillRect(0, 0, w, h);
  const top = 44, drumH = 56, rollH = h - top - drumH - 8;
  const now = S.playing || S.notes.length
    ? S.lastT + Math.min(1.0, (performance.now() - S.lastArrival) / 1000) : 0;
  const x = (t) => w * NOW_AT + ((t - now) / WINDOW_S) * w;
  const y = (p) => top + rollH - ((p - LOW) / (HIGH - LOW)) * rollH;
  // octave lines
  g.strokeStyle = "#1f232d"; g.lineWidth = 1;
  for (let p = 36; p <= HIGH; p += 12) {
    g.beginPath(); g.moveTo(0, y(p)); g.lineTo(w, y(p)); g.stroke();
    g.fillStyle = "#4a5060"; g.font = "11px system-ui"; g.fillText(`C${p / 12 - 1}`, 4, y(p) - 2);
  }
  // bars and their labels
  g.font = "12px system-ui";
  for (let i = 0; i < S.bars.length; i++) {
    const b = S.bars[i], bx = x(b.t);
    if (bx < -300 || bx > w) continue;
    const changed = i === 0 || S.bars[i - 1].state !== b.state;
    g.strokeStyle = changed ? "#ff7a59" : "#2c303c"; g.lineWidth = changed ? 2 : 1;
    g.beginPath(); g.moveTo(bx, top - 6); g.lineTo(bx, h); g.stroke();
    g.fillStyle = changed ? "#ff7a59" : "#8d93a5";
    g.fillText(`${changed ? b.state.toUpperCase() + " · " : ""}${b.section}`, bx + 4, 16);
    g.fillStyle = "#c9cede"; g.fillText(b.chords, bx + 4, 32);
  }
  // notes
  for (const n of S.notes) {
    const x0 = x(n.t0), x1 = x(n.t1 === null ? now : n.t1);
    if (x1 < 0 || x0 > w) continue;
    if (n.ch === 9) {
      const lane = h - drumH + ((n.pitch * 7) % (drumH - 8));
      g.fillStyle = "#ffd166"; g.fillRect(x0, lane, 3, 4);
    } else {
      g.fillStyle = COLORS[n.ch % COLORS.length];
      g.fillRect(x0, y(n.pitch) - 2, Math.max(2, x1 - x0 - 1), 4);
    }
  }
  // drum lane and the "now" line
  g.fillStyle = "#8d93a5"; g.fillText("drums", 4, h - drumH - 2);
  g.strokeStyle = "#2c303c"; g.beginPath(); g.moveTo(0, h - drumH - 6); g.lineTo(w, h - drumH - 6); g.stroke();
  g.strokeStyle = "#5ac8fa"; g.lineWidth = 2;
  g.beginPath(); g.moveTo(w * NOW_AT, top - 6); g.lineTo(w * NOW_AT, h); g.stroke();
  if (!S.playing && !S.notes.length) {
    g.fillStyle = "#8d93a5"; g.font = "16px system-ui";
    g.fillText("Press Play (Space), then a state (1–9): the music follows.", 40, h / 2);
  }
  requestAnimationFrame(draw);
}

updateDownloads();
connect();
requestAnimationFrame(draw);
