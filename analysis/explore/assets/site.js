// mnist_cnn explorer: the jump box, sorting on layer pages, arrow keys on unit pages.
// One local file, no libraries, no network.
"use strict";
const UNITS = /*UNITS*/;
const LAYERS = /*LAYERS*/;
const HINT = /*HINT*/;
const KNOWN = new Set(UNITS);

function normalise(text) {
  // "conv_3-48", "conv3 48", "Conv_3:48", "conv_3/48" -> "conv_3-48"; "dense1" -> "dense_1"
  // (a model's own names, such as "conv2d_1-3", are taken as typed when they exist)
  let s = text.trim().toLowerCase().replace(/[\s:/#.]+/g, "-").replace(/-+/g, "-").replace(/-$/, "");
  if (KNOWN.has(s) || LAYERS.includes(s)) return s;
  return s.replace(/^(conv|dense)-?(\d)/, "$1_$2");
}

function setUpJump() {
  const list = document.createElement("datalist");
  list.id = "unit-names";
  for (const name of UNITS) {
    const option = document.createElement("option");
    option.value = name;
    list.appendChild(option);
  }
  document.body.appendChild(list);
  for (const form of document.querySelectorAll("form.jump")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const typed = form.querySelector("input").value;
      const name = normalise(typed);
      if (KNOWN.has(name) || LAYERS.includes(name)) {
        window.location.href = name + ".html";
      } else {
        form.querySelector(".jump-msg").textContent =
          'no unit "' + typed + '": try ' + HINT;
      }
    });
  }
}

function sortTiles(key) {
  const box = document.getElementById("tiles");
  if (!box) return;
  const num = (tile, attr) => parseFloat(tile.dataset[attr]);
  const order = {
    index: (a, b) => num(a, "index") - num(b, "index"),
    sel: (a, b) => num(b, "sel") - num(a, "sel") || num(a, "index") - num(b, "index"),
    max: (a, b) => num(b, "max") - num(a, "max") || num(a, "index") - num(b, "index"),
    // most harmful to zero first: accuracy drop, then true-class probability drop
    effect: (a, b) => num(a, "acc") - num(b, "acc") || num(a, "p") - num(b, "p"),
  }[key];
  if (!order) return;
  [...box.children].sort(order).forEach((tile) => box.appendChild(tile));
  for (const button of document.querySelectorAll("button[data-sort]")) {
    button.classList.toggle("on", button.dataset.sort === key);
  }
  history.replaceState(null, "", "#sort=" + key);
}

function setUpSorting() {
  for (const button of document.querySelectorAll("button[data-sort]")) {
    button.addEventListener("click", () => sortTiles(button.dataset.sort));
  }
  const wanted = /sort=(\w+)/.exec(window.location.hash);
  if (wanted) sortTiles(wanted[1]);
}

function setUpKeys() {
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea") || event.altKey || event.ctrlKey || event.metaKey) return;
    const rel = { ArrowLeft: "prev", ArrowRight: "next" }[event.key];
    const link = rel && document.querySelector('a[rel="' + rel + '"]');
    if (link) window.location.href = link.getAttribute("href");
  });
}

setUpJump();
setUpSorting();
setUpKeys();
