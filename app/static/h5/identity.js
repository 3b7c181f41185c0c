/* 实名绑定 and 我的: the bind form with its live check, and the 取消微信绑定 confirmation.
   Talks to /api/v1 with the page's CSRF token; errors are shown beside their field. */
(function () {
  "use strict";

  var tokenMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = tokenMeta ? tokenMeta.getAttribute("content") : "";
  var NETWORK = "网络不稳定，请稍后再试。";

  function api(method, url, body) {
    var init = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": CSRF },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(
      function (res) {
        return res.json().then(
          function (data) { return { status: res.status, data: data }; },
          function () { return { status: res.status, data: null }; }
        );
      },
      function () { return { status: 0, data: null }; }
    );
  }

  // Every failure as [{field, message}]: 422 lists fields; 400/401/5xx carry one general message.
  function errorsOf(result) {
    var data = result.data || {};
    if (Array.isArray(data.errors)) return data.errors;
    if (result.status === 401) return [{ field: "_", message: "登录已过期，请刷新页面重新进入。" }];
    if (data.error && data.error.message) return [{ field: "_", message: data.error.message }];
    return [{ field: "_", message: NETWORK }];
  }

  function show(el, text) {
    if (!el) return;
    el.textContent = text || "";
    el.hidden = !text;
  }

  // ---- 取消微信绑定 (both pages) ----
  Array.prototype.forEach.call(document.querySelectorAll("[data-unbind]"), function (box) {
    var open = box.querySelector("[data-unbind-open]");
    var panel = box.querySelector("[data-unbind-confirm]");
    var yes = box.querySelector("[data-unbind-yes]");
    var no = box.querySelector("[data-unbind-cancel]");
    var err = box.querySelector("[data-unbind-error]");
    open.addEventListener("click", function () {
      panel.hidden = false;
      open.hidden = true;
      yes.focus();
    });
    no.addEventListener("click", function () {
      panel.hidden = true;
      open.hidden = false;
      show(err, "");
    });
    yes.addEventListener("click", function () {
      yes.disabled = true;
      show(err, "");
      api("DELETE", "/api/v1/me/identity").then(function (result) {
        if (result.status === 200) {
          window.location.assign(box.getAttribute("data-after"));
          return;
        }
        yes.disabled = false;
        show(err, errorsOf(result).map(function (e) { return e.message; }).join(" "));
      });
    });
  });

  // ---- the bind / modify form ----
  var form = document.getElementById("bind-form");
  if (!form) return;
  var typeSel = form.querySelector("#id_type");
  var nameIn = form.querySelector("#name");
  var numberIn = form.querySelector("#id_number");
  var checkOut = form.querySelector("#id-check");
  var submit = form.querySelector("#bind-submit");
  var modify = document.getElementById("modify");
  var modifyCancel = document.getElementById("modify-cancel");

  function fieldError(field, message) {
    var el = form.querySelector('[data-field-error="' + field + '"]') || form.querySelector('[data-field-error="_"]');
    show(el, message);
    var input = form.querySelector('[name="' + field + '"]');
    if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
  }

  function clearErrors() {
    Array.prototype.forEach.call(form.querySelectorAll("[data-field-error]"), function (el) {
      fieldError(el.getAttribute("data-field-error"), "");
    });
  }

  function showErrors(errors) {
    errors.forEach(function (e) { fieldError(e.field, e.message); });
    var first = errors.length && form.querySelector('[name="' + errors[0].field + '"]');
    if (first) first.focus();
  }

  // The number as the server will read it: full-width → half-width, no spaces or dashes, upper case.
  function cleaned(value) {
    var v = value.normalize ? value.normalize("NFKC") : value;
    return v.replace(/[\s\-()（）]/g, "").toUpperCase();
  }

  // When a number of this type is long enough to be worth checking while the student types.
  var COMPLETE = {
    resident_id: /^[0-9]{17}[0-9X]$/,
    residence_permit: /^[0-9]{17}[0-9X]$/,
    hk_macao_permit: /^[HM][0-9]{8}([0-9]{2})?$/,
    taiwan_permit: /^([0-9]{8}|[0-9]{10}[A-Z]?)$/,
    passport: null, // no fixed length: checked when the field is left
  };

  function applyType() {
    var opt = typeSel.options[typeSel.selectedIndex];
    numberIn.placeholder = opt.getAttribute("data-placeholder");
    numberIn.setAttribute("inputmode", opt.getAttribute("data-inputmode"));
    numberIn.maxLength = parseInt(opt.getAttribute("data-maxlength"), 10);
    // Passport names are often Latin letters, written in capitals as on the data page.
    nameIn.setAttribute("autocapitalize", typeSel.value === "passport" ? "characters" : "off");
  }

  // The number and the name are checked separately, each on its own trigger; a reply that a newer
  // check of the same field has overtaken is dropped.
  var latest = { id_number: 0, name: 0 };
  function check(field) {
    var seq = ++latest[field];
    var body = { id_type: typeSel.value };
    if (field === "id_number") body.id_number = cleaned(numberIn.value);
    else body.name = nameIn.value;
    return api("POST", "/api/v1/identity/check", body).then(function (result) {
      if (seq !== latest[field]) return;
      var errors = result.status === 200 ? [] : errorsOf(result);
      var mine = errors.filter(function (e) { return e.field === field; })[0];
      var general = errors.filter(function (e) { return e.field === "_"; })[0];
      fieldError(field, mine ? mine.message : "");
      if (general) fieldError("_", general.message);
      if (field === "id_number") show(checkOut, result.status === 200 ? result.data.confirm : "");
    });
  }

  var timer = null;
  numberIn.addEventListener("input", function () {
    show(checkOut, "");
    fieldError("id_number", "");
    clearTimeout(timer);
    var rule = COMPLETE[typeSel.value];
    if (rule && rule.test(cleaned(numberIn.value))) {
      timer = setTimeout(function () { check("id_number"); }, 150);
    }
  });
  numberIn.addEventListener("blur", function () {
    if (cleaned(numberIn.value)) check("id_number");
  });
  nameIn.addEventListener("blur", function () {
    if (nameIn.value.trim()) check("name");
  });
  nameIn.addEventListener("input", function () { fieldError("name", ""); });
  typeSel.addEventListener("change", function () {
    applyType();
    show(checkOut, "");
    fieldError("id_number", "");
    if (cleaned(numberIn.value)) check("id_number");
    if (nameIn.value.trim()) check("name"); // a Latin name is right for a passport only
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    submit.disabled = true;
    api("PUT", "/api/v1/me/identity", {
      id_type: typeSel.value,
      id_number: numberIn.value,
      name: nameIn.value,
    }).then(function (result) {
      if (result.status === 200) {
        window.location.assign("/h5/bind?done=bound");
        return;
      }
      submit.disabled = false;
      showErrors(errorsOf(result));
    });
  });

  // ---- 拍身份证自动填写: the card's front read by POST /api/v1/me/idcard/read, the form filled ----
  var cardFile = document.getElementById("idcard-file");
  var cardStatus = document.getElementById("idcard-status");
  var cardFacts = document.getElementById("idcard-facts");
  var cardWarnings = document.getElementById("idcard-warnings");
  var FACTS = [["sex", "性别"], ["ethnicity", "民族"], ["birth_date", "出生日期"], ["address", "住址"]];

  function showCard(data) {
    cardFacts.textContent = "";
    FACTS.forEach(function (pair) {
      if (!data[pair[0]]) return;
      var dt = document.createElement("dt");
      dt.textContent = pair[1];
      var dd = document.createElement("dd");
      dd.textContent = data[pair[0]];
      dd.setAttribute("data-read", pair[0]);
      cardFacts.appendChild(dt);
      cardFacts.appendChild(dd);
    });
    cardFacts.hidden = !cardFacts.childNodes.length;
    cardWarnings.textContent = "";
    var LABEL = { name: "姓名", id_number: "证件号码", sex: "性别", ethnicity: "民族", birth_date: "出生日期", address: "住址" };
    var doubts = (data.uncertain || []).filter(function (key) { return data[key] && LABEL[key]; }).map(function (key) {
      return { message: "「" + LABEL[key] + "」识别得不太清楚，请逐字核对。" };
    });
    (data.warnings || []).concat(doubts).forEach(function (w) {
      var li = document.createElement("li");
      li.textContent = w.message;
      cardWarnings.appendChild(li);
    });
    cardWarnings.hidden = !cardWarnings.childNodes.length;
  }

  if (cardFile) {
    cardFile.addEventListener("change", function () {
      if (!cardFile.files.length) return;
      var body = new FormData();
      body.append("file", cardFile.files[0]);
      cardFile.value = "";
      show(cardStatus, "正在识别，请稍候……");
      showCard({});
      fetch("/api/v1/me/idcard/read", {
        method: "POST", credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRFToken": CSRF }, body: body,
      }).then(function (res) {
        return res.json().then(function (data) { return { status: res.status, data: data }; },
                              function () { return { status: res.status, data: null }; });
      }, function () { return { status: 0, data: null }; }).then(function (result) {
        if (result.status !== 200) {
          show(cardStatus, "");
          showCard({ warnings: errorsOf(result) });
          return;
        }
        var data = result.data;
        typeSel.value = "resident_id";
        applyType();
        if (data.name) { nameIn.value = data.name; check("name"); }
        if (data.id_number) { numberIn.value = data.id_number; check("id_number"); }
        show(cardStatus, "已根据身份证填写，请逐项核对，有误可直接修改后再确定绑定。");
        showCard(data);
      });
    });
  }

  if (modify) {
    modify.addEventListener("click", function () {
      form.hidden = false;
      modify.hidden = true;
      nameIn.focus();
    });
  }
  if (modifyCancel) {
    modifyCancel.addEventListener("click", function () {
      form.hidden = true;
      clearErrors();
      if (modify) { modify.hidden = false; modify.focus(); }
    });
  }
  applyType();
})();
