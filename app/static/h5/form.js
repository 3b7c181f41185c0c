/* /h5/form: show or hide fields by their `when`, add group rows, and save the answers with
   PUT /api/v1/me/form; errors are shown under the field their dotted path names.
   /h5/documents: upload a file into a slot (POST /api/v1/me/documents/<slot>) or delete one; the page
   reloads to show the new list. In a staff preview (data-preview) only `when` and rows work. */
(function () {
  "use strict";

  var docs = document.getElementById("documents-page");
  if (docs && !docs.hasAttribute("data-preview")) {
    var token = document.querySelector('meta[name="csrf-token"]');
    var headers = { Accept: "application/json", "X-CSRFToken": token ? token.getAttribute("content") : "" };
    var fail = function (box, message) {
      var el = box.querySelector("[data-slot-error]");
      el.textContent = message || "网络不稳定，请稍后再试。";
      el.hidden = false;
    };
    var handle = function (box) {
      return function (resp) {
        // Read the answer to its end first: reloading while its body is still coming aborts it.
        if (resp.ok) { return resp.text().then(function () { window.location.reload(); }); }
        return resp.json().then(function (data) {
          fail(box, data.errors ? data.errors.map(function (e) { return e.message; }).join(" ") : data.error && data.error.message);
        });
      };
    };
    docs.querySelectorAll("[data-upload]").forEach(function (input) {
      input.addEventListener("change", function () {
        if (!input.files.length) return;
        var box = input.closest("[data-slot]");
        var body = new FormData();
        body.append("file", input.files[0]);
        fetch("/api/v1/me/documents/" + input.getAttribute("data-upload"), {
          method: "POST", credentials: "same-origin", headers: headers, body: body,
        }).then(handle(box)).catch(function () { fail(box); });
      });
    });
    docs.querySelectorAll("[data-delete]").forEach(function (button) {
      button.addEventListener("click", function () {
        var box = button.closest("[data-slot]");
        fetch("/api/v1/me/documents/" + button.getAttribute("data-delete"), {
          method: "DELETE", credentials: "same-origin", headers: headers,
        }).then(handle(box)).catch(function () { fail(box); });
      });
    });
  }

  var page = document.getElementById("form-page");
  var save = document.getElementById("form-save");  // absent while the answers are under review
  if (!page) return;
  var tokenMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = tokenMeta ? tokenMeta.getAttribute("content") : "";
  var NETWORK = "网络不稳定，请稍后再试。";

  function valueOf(key) {
    var el = page.querySelector('[data-key="' + key + '"]:not([data-sub])');
    return el ? el.value : "";
  }

  function applyWhen() {
    page.querySelectorAll("[data-when-field]").forEach(function (box) {
      var allowed = box.getAttribute("data-when-equals").split("|");
      box.hidden = allowed.indexOf(valueOf(box.getAttribute("data-when-field"))) < 0;
    });
  }

  function collect() {
    var answers = {};
    page.querySelectorAll("[data-field]").forEach(function (box) {
      if (box.hidden) return;
      var key = box.getAttribute("data-field");
      var group = box.querySelector("[data-group]");
      if (group) {
        answers[key] = Array.prototype.map.call(group.querySelectorAll(".group-row"), function (row) {
          var values = {};
          row.querySelectorAll("[data-sub]").forEach(function (el) { values[el.getAttribute("data-sub")] = el.value; });
          return values;
        });
      } else {
        answers[key] = valueOf(key);
      }
    });
    return answers;
  }

  function showErrors(errors) {
    page.querySelectorAll("[data-error]").forEach(function (el) { el.hidden = true; el.textContent = ""; });
    var general = document.getElementById("form-error");
    general.hidden = true;
    errors.forEach(function (e) {
      var el = page.querySelector('[data-error="' + e.field + '"]') || general;
      el.textContent = e.message;
      el.hidden = false;
    });
  }

  page.querySelectorAll("[data-add-row]").forEach(function (button) {
    button.addEventListener("click", function () {
      var group = page.querySelector('[data-group="' + button.getAttribute("data-add-row") + '"]');
      var rows = group.querySelectorAll(".group-row");
      if (rows.length >= Number(group.getAttribute("data-max"))) return;
      var copy = rows[rows.length - 1].cloneNode(true);
      copy.querySelectorAll("input, select, textarea").forEach(function (el) { el.value = ""; el.removeAttribute("id"); });
      copy.querySelectorAll("[data-error]").forEach(function (el) {
        el.setAttribute("data-error", el.getAttribute("data-error").replace(/\.\d+\./, "." + (rows.length + 1) + "."));
        el.hidden = true;
      });
      group.appendChild(copy);
    });
  });

  page.addEventListener("change", applyWhen);
  applyWhen();
  if (page.hasAttribute("data-preview")) return; // staff preview: the same form, never saved
  if (!save) return; // read-only: under review, or nothing of it sent back

  save.addEventListener("click", function () {
    save.disabled = true;
    document.getElementById("form-saved").hidden = true;
    fetch("/api/v1/me/form", {
      method: "PUT", credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": CSRF },
      body: JSON.stringify({ answers: collect() }),
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        save.disabled = false;
        if (resp.status === 200) {
          showErrors([]);
          var missing = document.getElementById("form-missing");
          missing.textContent = "";
          data.missing.forEach(function (m) {
            var li = document.createElement("li");
            li.textContent = m.message;
            missing.appendChild(li);
          });
          page.setAttribute("data-state", data.complete ? "complete" : "draft");
          document.getElementById("form-saved").hidden = false;
          return;
        }
        showErrors(data.errors || [{ field: "_", message: (data.error && data.error.message) || NETWORK }]);
      });
    }).catch(function () { save.disabled = false; showErrors([{ field: "_", message: NETWORK }]); });
  });
})();
