/* 手写签名: a canvas the student signs on with a finger (or a mouse), sent as a PNG data URL.

   Written by hand rather than taken from a CDN: the pages must work inside WeChat's browser on
   networks where a third-party host may be slow or blocked, the signature is printed on the
   receipt (a script loaded from elsewhere could alter it), and the whole job is ~80 lines.

   Usage: var pad = SignaturePad(document.getElementById("signature-pad"));
          pad.isEmpty(); pad.clear(); pad.toDataURL();  // "data:image/png;base64,…"
   The canvas is transparent with dark ink: the server counts opaque pixels as ink. */
(function () {
  "use strict";

  function SignaturePad(canvas) {
    var ctx = canvas.getContext("2d");
    var strokes = 0;
    var drawing = false;
    var last = null;

    // Back the canvas with device pixels so the ink is sharp on a phone (and on the receipt).
    function resize() {
      var ratio = Math.max(1, Math.min(window.devicePixelRatio || 1, 3));
      var rect = canvas.getBoundingClientRect();
      var width = Math.max(1, Math.round(rect.width * ratio));
      var height = Math.max(1, Math.round(rect.height * ratio));
      if (canvas.width === width && canvas.height === height) return;
      canvas.width = width;
      canvas.height = height;
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.lineWidth = 3;
      ctx.strokeStyle = "#111";
      ctx.fillStyle = "#111";
      strokes = 0;  // resizing wipes the canvas
    }

    function point(event) {
      var rect = canvas.getBoundingClientRect();
      var source = event.touches && event.touches.length ? event.touches[0] : event;
      return { x: source.clientX - rect.left, y: source.clientY - rect.top };
    }

    function start(event) {
      if (event.button !== undefined && event.button > 0) return;
      event.preventDefault();  // no scrolling or text selection while signing
      // A pad laid out while hidden (the photo page's last step) measured 0×0: size it now.
      if (strokes === 0) resize();
      drawing = true;
      last = point(event);
      ctx.beginPath();
      ctx.arc(last.x, last.y, ctx.lineWidth / 2, 0, Math.PI * 2);
      ctx.fill();
      strokes += 1;
      canvas.setAttribute("data-strokes", String(strokes));
      canvas.dispatchEvent(new Event("signature-change"));
    }

    function move(event) {
      if (!drawing) return;
      event.preventDefault();
      var next = point(event);
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(next.x, next.y);
      ctx.stroke();
      last = next;
    }

    function end() { drawing = false; last = null; }

    if (window.PointerEvent) {
      // Pointer events cover touch, pen and mouse alike.
      canvas.addEventListener("pointerdown", function (e) {
        if (canvas.setPointerCapture) canvas.setPointerCapture(e.pointerId);
        start(e);
      });
      canvas.addEventListener("pointermove", move);
      canvas.addEventListener("pointerup", end);
      canvas.addEventListener("pointercancel", end);
    } else {
      // Older in-app browsers: touch and mouse events separately.
      canvas.addEventListener("touchstart", start, { passive: false });
      canvas.addEventListener("touchmove", move, { passive: false });
      canvas.addEventListener("touchend", end);
      canvas.addEventListener("mousedown", start);
      canvas.addEventListener("mousemove", move);
      window.addEventListener("mouseup", end);
    }

    resize();
    window.addEventListener("resize", function () { if (strokes === 0) resize(); });
    if (window.ResizeObserver) new ResizeObserver(function () { if (strokes === 0) resize(); }).observe(canvas);

    return {
      isEmpty: function () { return strokes === 0; },
      clear: function () {
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        strokes = 0;
        canvas.setAttribute("data-strokes", "0");
        canvas.dispatchEvent(new Event("signature-change"));
      },
      toDataURL: function () { return canvas.toDataURL("image/png"); },
    };
  }

  window.SignaturePad = SignaturePad;

  /* The 承诺 checkbox (#pledge) and, where the batch asks, the pad (#signature-pad, 「清除」
     #signature-clear) as one part of a form: what to send, and the server's 422 errors shown next
     to their field (#pledge-error, #signature-error). */
  function PledgeFields() {
    var box = document.getElementById("pledge");
    var canvas = document.getElementById("signature-pad");
    var pad = canvas ? SignaturePad(canvas) : null;
    var clearButton = document.getElementById("signature-clear");
    var errorOf = { pledge: document.getElementById("pledge-error"), signature: document.getElementById("signature-error") };

    function show(field, text) {
      var el = errorOf[field];
      if (!el) return false;
      el.textContent = text || "";
      el.hidden = !text;
      var input = field === "pledge" ? box : canvas;
      if (input) input.setAttribute("aria-invalid", text ? "true" : "false");
      return true;
    }

    if (clearButton && pad) clearButton.addEventListener("click", function () { pad.clear(); });
    if (box) box.addEventListener("change", function () { if (box.checked) show("pledge", ""); });
    if (canvas) canvas.addEventListener("signature-change", function () { if (!pad.isEmpty()) show("signature", ""); });

    return {
      // The body's pledge fields, or null when something is missing (then shown at its field).
      collect: function () {
        show("pledge", "");
        show("signature", "");
        var body = { pledge: box ? box.checked : false };
        var ok = true;
        if (box && !box.checked) { show("pledge", "请阅读并勾选承诺。"); ok = false; }
        if (pad) {
          if (pad.isEmpty()) { show("signature", "请在签名框内手写签名后再提交。"); ok = false; }
          else body.signature = pad.toDataURL();
        }
        return ok ? body : null;
      },
      // Shows each error at its field; returns the messages that belong to no field here.
      showErrors: function (errors) {
        var rest = [];
        (errors || []).forEach(function (e) { if (!show(e.field, e.message)) rest.push(e.message); });
        return rest;
      },
    };
  }

  window.PledgeFields = PledgeFields;
})();
