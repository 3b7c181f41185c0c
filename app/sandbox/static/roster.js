/* The roster editor panel (templates/sandbox/_roster.html) over GET/POST /_sandbox/roster and
 * DELETE /_sandbox/roster/<entry_id>. Entries are shown with textContent only (names are typed by
 * people); numbers come back masked from the server.
 */
(function () {
  "use strict";

  var API = "/_sandbox/roster";
  var $ = function (id) { return document.getElementById(id); };
  var panel = $("roster-panel");
  if (!panel) { return; }
  var form = $("roster-form"), list = $("roster-list"), empty = $("roster-empty"), count = $("roster-count");
  var fields = { id_number: $("roster-id-number"), name: $("roster-name"), result: $("roster-result") };

  function request(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(API + path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error((data.error && data.error.message) || ("请求失败（" + response.status + "）"));
          error.fields = data.errors || [];
          throw error;
        }
        return data;
      });
    });
  }

  function showErrors(errors) {
    Object.keys(fields).forEach(function (name) {
      var slot = $("roster-error-" + name);
      var found = errors.filter(function (e) { return e.field === name; });
      slot.textContent = found.map(function (e) { return e.message; }).join("；");
      slot.hidden = found.length === 0;
      fields[name].setAttribute("aria-invalid", found.length ? "true" : "false");
    });
    var other = errors.filter(function (e) { return !fields[e.field]; });
    if (other.length) {
      var slot = $("roster-error-result");
      slot.textContent = other.map(function (e) { return e.message; }).join("；");
      slot.hidden = false;
    }
  }

  function render(entries) {
    list.textContent = "";
    count.textContent = entries.length ? "（" + entries.length + " 条）" : "";
    empty.hidden = entries.length > 0;
    entries.forEach(function (entry) {
      var item = document.createElement("li");
      item.dataset.entryId = entry.entry_id;
      var text = document.createElement("span");
      text.className = "roster-entry";
      var number = document.createElement("span");
      number.className = "roster-number";
      number.textContent = entry.number_masked;
      var label = document.createElement("span");
      label.className = "roster-label";
      label.textContent = " " + entry.name + " → " + entry.result_label;
      text.appendChild(number);
      text.appendChild(label);
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "roster-delete";
      remove.textContent = "删除";
      remove.setAttribute("aria-label", "删除 " + entry.number_masked);
      remove.addEventListener("click", function () {
        remove.disabled = true;
        request("DELETE", "/" + encodeURIComponent(entry.entry_id)).then(load, function (error) {
          remove.disabled = false;
          showErrors([{ field: "result", message: error.message }]);
        });
      });
      item.appendChild(text);
      item.appendChild(remove);
      list.appendChild(item);
    });
  }

  function load() {
    return request("GET", "").then(function (data) { render(data.entries || []); }, function (error) {
      showErrors([{ field: "result", message: error.message }]);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = { id_number: fields.id_number.value, name: fields.name.value, result: fields.result.value };
    $("roster-add").disabled = true;
    request("POST", "", body).then(function () {
      showErrors([]);
      fields.id_number.value = "";
      fields.name.value = "";
      return load();
    }, function (error) {
      showErrors(error.fields.length ? error.fields : [{ field: "result", message: error.message }]);
    }).then(function () { $("roster-add").disabled = false; });
  });

  panel.addEventListener("toggle", function () { if (panel.open) { load(); } });
  load();
})();
