// The drawing page: strokes (mouse, pen or finger) on a canvas, or a photo, sent to POST /predict
// after each stroke; the answer shown as the digit, its probabilities, the 28x28 the model sees
// and, for a CNN, every Conv2D and MaxPooling2D layer's feature maps as small grey tiles.
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const statusLine = document.getElementById("status");
const digitOut = document.getElementById("digit");
const seenImg = document.getElementById("seen");
const probsBox = document.getElementById("probs");
const mapsBox = document.getElementById("maps");
const mapsNote = document.getElementById("maps-note");
const modelNote = document.getElementById("model");
const fileInput = document.getElementById("file");

// The stroke is about as thick, relative to the pad, as MNIST's pen is to its 28x28 box.
const STROKE = pad.width / 14;
let drawing = false;
let last = null;
let asked = 0; // requests sent; an answer older than the newest one is dropped

// Ten rows of the bar chart, one per digit.
const rows = [];
for (let d = 0; d < 10; d++) {
  const row = document.createElement("div");
  row.className = "row";
  row.innerHTML = `<span>${d}</span><div class="bar"><div class="fill"></div></div><span class="pct">&ndash;</span>`;
  probsBox.appendChild(row);
  rows.push(row);
}

function clearPad() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
}

function point(event) {
  // Pointer position in the canvas' own pixels, whatever size CSS gives it.
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

function line(from, to) {
  ink.strokeStyle = "#000";
  ink.lineWidth = STROKE;
  ink.lineCap = "round";
  ink.lineJoin = "round";
  ink.beginPath();
  ink.moveTo(from[0], from[1]);
  ink.lineTo(to[0], to[1]);
  ink.stroke();
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  last = point(event);
  line(last, last); // a dot, for a tap
});

pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const next = point(event);
  line(last, next);
  last = next;
});

// The end of a stroke sends the pad as it is now.
function endStroke() {
  drawing = false;
  last = null;
  pad.toBlob((blob) => send(blob), "image/png");
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", () => { drawing = false; last = null; });

document.getElementById("clear").addEventListener("click", () => {
  clearPad();
  asked++; // an answer still on its way is for the old drawing
  digitOut.textContent = "\u2013";
  seenImg.removeAttribute("src");
  rows.forEach((row) => showBar(row, null, false));
  mapsBox.replaceChildren();
  say("Draw a digit, or drop a photo on the pad.");
});

// A photo, picked or dropped: shown on the pad and sent as the file itself.
async function usePhoto(file) {
  if (!file) return;
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const w = bitmap.width * scale, h = bitmap.height * scale;
    clearPad();
    ink.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  } catch (err) {
    // The browser cannot show it; the server may still read it (or say why not).
  }
  send(file);
}
fileInput.addEventListener("change", () => { usePhoto(fileInput.files[0]); fileInput.value = ""; });
pad.addEventListener("dragover", (event) => { event.preventDefault(); pad.classList.add("over"); });
pad.addEventListener("dragleave", () => pad.classList.remove("over"));
pad.addEventListener("drop", (event) => {
  event.preventDefault();
  pad.classList.remove("over");
  usePhoto(event.dataTransfer.files[0]);
});

function say(text, isError) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", Boolean(isError));
}

async function send(blob) {
  const mine = ++asked;
  say("Reading\u2026");
  let answer;
  try {
    const response = await fetch("predict", { method: "POST", body: blob, headers: { "Content-Type": blob.type || "application/octet-stream" } });
    answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  } catch (err) {
    if (mine === asked) say(String(err.message || err), true);
    return;
  }
  if (mine !== asked) return;
  await show(answer);
  if (mine === asked) {
    say(`Read as ${answer.digit} (${(100 * answer.probabilities[answer.digit]).toFixed(1)}%).`);
    document.body.dataset.answers = String(Number(document.body.dataset.answers || 0) + 1);
  }
}

function showBar(row, p, isTop) {
  row.querySelector(".fill").style.width = p === null ? "0" : `${(100 * p).toFixed(1)}%`;
  row.querySelector(".pct").textContent = p === null ? "\u2013" : `${(100 * p).toFixed(1)}%`;
  row.classList.toggle("top", isTop);
}

async function show(answer) {
  digitOut.textContent = String(answer.digit);
  seenImg.src = answer.seen;
  answer.probabilities.forEach((p, d) => showBar(rows[d], p, d === answer.digit));
  modelNote.textContent = answer.model ? `Model: ${answer.model}` : ""; // which run made it, as predict.py says
  const layers = answer.feature_maps || [];
  mapsNote.textContent = layers.length
    ? "Each Conv2D and MaxPooling2D layer's maps for your digit (each map scaled to its own maximum; brighter: stronger)."
    : "This model has no Conv2D or MaxPooling2D layers (an MLP or RNN): the prediction alone.";
  const blocks = [];
  for (const layer of layers) {
    const mosaic = new Image();
    mosaic.src = layer.mosaic;
    await mosaic.decode();
    const [h, w] = layer.tile;
    const block = document.createElement("div");
    block.className = "layer";
    const title = document.createElement("h3");
    title.textContent = `${layer.name}: ${layer.shape.join("\u00d7")}`;
    const tiles = document.createElement("div");
    tiles.className = "tiles";
    for (let i = 0; i < layer.shape[2]; i++) {
      const tile = document.createElement("canvas");
      tile.className = "tile";
      tile.width = w;
      tile.height = h;
      const col = i % layer.columns, row = Math.floor(i / layer.columns);
      tile.getContext("2d").drawImage(mosaic, col * w, row * h, w, h, 0, 0, w, h);
      tiles.appendChild(tile);
    }
    block.append(title, tiles);
    blocks.push(block);
  }
  mapsBox.replaceChildren(...blocks);
}

clearPad();
