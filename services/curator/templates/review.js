// The review page's only script (CSP: this nonce only): each box's live character count, and shortcuts.
// The server checks every length again; this count is the same rule (contracts.text_length) as a guide.
(function () {
  "use strict";
  var LINK = 23;
  var LINKS = /https?:\/\/\S+/gi;
  var LIGHT = [[0x0000, 0x10ff], [0x2000, 0x200d], [0x2010, 0x201f], [0x2032, 0x2037]];
  var NAMES = { x: "X", mastodon: "Mastodon", bluesky: "Bluesky", dry_run: "the dry run" };

  function xWeight(text) {
    var n = 0;
    for (var ch of text) {
      var c = ch.codePointAt(0);
      n += LIGHT.some(function (r) { return c >= r[0] && c <= r[1]; }) ? 1 : 2;
    }
    return n;
  }

  function length(text, platform) {
    text = text.normalize("NFC").trim();
    if (platform === "bluesky" && window.Intl && Intl.Segmenter) {
      return Array.from(new Intl.Segmenter().segment(text)).length;
    }
    if (platform !== "x" && platform !== "mastodon") return Array.from(text).length;
    var links = (text.match(LINKS) || []).length;
    var rest = text.replace(LINKS, "");
    return links * LINK + (platform === "x" ? xWeight(rest) : Array.from(rest).length);
  }

  function update(box) {
    // Grow to the text, so a whole post is seen without scrolling inside it (an empty box keeps its size).
    box.style.height = "";
    if (box.value) box.style.height = Math.max(box.scrollHeight + 4, box.offsetHeight) + "px";
    var out = document.getElementById(box.getAttribute("aria-describedby"));
    var limit = parseInt(box.dataset.limit, 10);
    var frame = box.dataset.frame;
    var text = frame ? (box.value.trim() ? frame.replace("{text}", box.value.trim()) : "") : box.value;
    var n = length(text, box.dataset.platform);
    if (!out || !limit) return;
    var over = n - limit;
    out.textContent = n + " / " + limit + (over > 0 ? " \u2014 " + over + " too many for " +
      (NAMES[box.dataset.platform] || box.dataset.platform) : "");
    out.classList.toggle("over", over > 0);
  }

  var boxes = Array.prototype.slice.call(document.querySelectorAll("textarea[data-platform]"));
  boxes.forEach(function (box) {
    update(box);
    box.addEventListener("input", function () { update(box); });
  });
  window.addEventListener("resize", function () { boxes.forEach(update); }); // a turned phone rewraps

  var forms = Array.prototype.slice.call(document.querySelectorAll("form.candidate"));
  var current = 0;
  function select(i) {
    current = Math.max(0, Math.min(forms.length - 1, i));
    forms.forEach(function (form, j) { form.classList.toggle("current", j === current); });
    forms[current].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT")) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form) {
        event.preventDefault();
        target.form.requestSubmit();
      } else if (event.key === "Escape") {
        target.blur();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || !forms.length) return;
    var next = document.getElementById("next-song");
    var actions = {
      j: function () { select(current + 1); },
      k: function () { select(current - 1); },
      e: function () { forms[current].querySelector("textarea").focus(); },
      a: function () { forms[current].requestSubmit(); },
      w: function () { var own = document.getElementById("box-own"); if (own) own.focus(); },
      r: function () {
        if (window.confirm("Reject every candidate of this song?")) document.getElementById("reject").requestSubmit();
      },
      n: function () { if (next) window.location.href = next.href; },
    };
    if (actions[event.key]) {
      event.preventDefault();
      actions[event.key]();
    }
  });
})();
