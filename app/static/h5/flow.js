/* The workflow pages: 我已阅读 on /h5/notice (POST /api/v1/me/notice, then on to the photo page) and
   确认提交 on /h5/confirm/<id> (POST /api/v1/me/submissions/<id>/confirm with the pledge and the
   signature; errors shown next to their field). */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var tokenMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = tokenMeta ? tokenMeta.getAttribute("content") : "";
  var NETWORK = "网络不稳定，请稍后再试。";

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": CSRF },
      body: JSON.stringify(body || {}),
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        return { status: resp.status, data: data };
      });
    });
  }

  function messageOf(res) {
    var data = res.data || {};
    if (res.status === 401) return "登录已过期，请刷新页面重新进入。";
    if (data.error && data.error.message) return data.error.message;
    return NETWORK;
  }

  function say(el, text) { el.textContent = text || ""; el.hidden = !text; }

  // --- /h5/notice --------------------------------------------------------------------------------
  var ack = $("notice-ack");
  if (ack) {
    ack.addEventListener("click", function () {
      ack.disabled = true;
      say($("notice-error"), "");
      post("/api/v1/me/notice").then(function (res) {
        if (res.status === 200) {
          $("notice-page").setAttribute("data-state", "read");
          ack.hidden = true;
          $("notice-next").hidden = false;
          window.location.href = "/h5/photo";
          return;
        }
        ack.disabled = false;
        var errors = res.data && res.data.errors;
        say($("notice-error"), errors ? errors.map(function (e) { return e.message; }).join(" ") : messageOf(res));
      }).catch(function () { ack.disabled = false; say($("notice-error"), NETWORK); });
    });
  }

  // --- /h5/confirm/<id> --------------------------------------------------------------------------
  var confirmButton = $("confirm-submit");
  if (confirmButton) {
    var page = $("confirm-page");
    var fields = window.PledgeFields();
    var general = $("confirm-error");
    confirmButton.addEventListener("click", function () {
      say(general, "");
      var body = fields.collect();
      if (body === null) return;
      confirmButton.disabled = true;
      post("/api/v1/me/submissions/" + page.getAttribute("data-submission") + "/confirm", body).then(function (res) {
        if (res.status === 200) {
          page.setAttribute("data-state", "confirmed");
          $("confirm-form").hidden = true;
          $("confirmed").hidden = false;
          $("confirmed").scrollIntoView({ behavior: "smooth", block: "start" });
          return;
        }
        confirmButton.disabled = false;
        var errors = res.data && res.data.errors;
        if (errors) {
          var rest = fields.showErrors(errors);
          say(general, rest.join(" "));
        } else {
          say(general, messageOf(res));
        }
      }).catch(function () { confirmButton.disabled = false; say(general, NETWORK); });
    });
  }
})();
