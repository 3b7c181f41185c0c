// /h5/school: 选择省 → 选择市 → 学校名称 → 学历/级/届, search by name, 确定关联.
// Every list comes from /api/v1; the page's data-* attributes say what to pre-select.
(function () {
  "use strict";

  var page = document.getElementById("school-page");
  if (!page || page.dataset.state === "need-identity") return;

  var $ = function (id) { return document.getElementById(id); };
  var provinceSelect = $("province");
  var citySelect = $("city");
  var schoolSelect = $("school");
  var batchList = $("batch-list");
  var linkButton = $("link-button");
  var linkError = $("link-error");
  var locked = page.dataset.locked === "1";
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');

  var regions = [];      // [{province, cities}]
  var batches = {};      // id → batch of the chosen school
  var chosenSchool = null;

  var dateFormat = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false
  });

  function beijing(iso) { return dateFormat.format(new Date(iso)); }

  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = csrfMeta ? csrfMeta.content : "";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 401) {  // the session ended: sign in again and come back here
        window.location.reload();
        return new Promise(function () {});
      }
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data };
      });
    });
  }

  function problem(result) {
    var data = result.data || {};
    if (data.errors && data.errors.length) return data.errors[0].message;
    if (data.error && data.error.message) return data.error.message;
    return "网络异常，请稍后再试";
  }

  function fillSelect(select, placeholder, items) {
    select.textContent = "";
    var first = document.createElement("option");
    first.value = "";
    first.textContent = placeholder;
    select.appendChild(first);
    items.forEach(function (item) {
      var option = document.createElement("option");
      option.value = item.value;
      option.textContent = item.label;
      select.appendChild(option);
    });
    select.disabled = locked || items.length === 0;
  }

  function clearBatches(message) {
    batches = {};
    batchList.textContent = "";
    var p = document.createElement("p");
    p.className = "muted";
    p.textContent = message;
    batchList.appendChild(p);
    showDetail(null);
  }

  function selectedBatch() {
    var checked = batchList.querySelector("input[name=batch]:checked");
    return checked ? batches[checked.value] : null;
  }

  function showDetail(batch) {
    $("batch-detail").hidden = !batch;
    linkError.textContent = batch && !batch.open ? batch.closed_message : "";
    linkButton.disabled = locked || !batch || !batch.open;
    if (!batch) return;
    $("detail-spec").textContent = batch.photo_spec.description;
    $("detail-fee").textContent = batch.fee_label + "（每次核验）";
    $("detail-dates").textContent = beijing(batch.opens_at) + " 至 " + beijing(batch.closes_at);
    $("detail-review").textContent = "缴费核验后约 " + batch.review_days.label + "出结果";
  }

  function renderBatches(list, preselectId) {
    batches = {};
    batchList.textContent = "";
    if (!list.length) {
      clearBatches("该学校暂时没有可关联的批次");
      return;
    }
    list.forEach(function (batch) {
      batches[batch.id] = batch;
      var label = document.createElement("label");
      label.className = "batch" + (batch.open ? "" : " closed");
      label.dataset.testid = "batch-" + batch.id;
      var input = document.createElement("input");
      input.type = "radio";
      input.name = "batch";
      input.value = String(batch.id);
      input.id = "batch-" + batch.id;
      input.disabled = locked || !batch.open;
      input.checked = String(batch.id) === String(preselectId);
      input.addEventListener("change", function () { showDetail(batch); });
      var text = document.createElement("span");
      var name = document.createElement("span");
      name.className = "batch-name";
      name.textContent = batch.name;
      text.appendChild(name);
      if (String(batch.id) === page.dataset.preselectBatch) {
        var tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "当前";
        text.appendChild(tag);
      }
      var meta = document.createElement("small");
      var state = batch.open ? "截止 " + beijing(batch.closes_at)
        : (new Date(batch.opens_at) > new Date() ? "未开放" : "已截止");
      meta.textContent = batch.education + " · " + state;
      text.appendChild(meta);
      if (!batch.open) {
        var closed = document.createElement("small");
        closed.className = "batch-closed";
        closed.textContent = batch.closed_message;
        text.appendChild(closed);
      }
      label.appendChild(input);
      label.appendChild(text);
      batchList.appendChild(label);
    });
    showDetail(selectedBatch());
  }

  function citiesOf(province) {
    for (var i = 0; i < regions.length; i++) {
      if (regions[i].province === province) return regions[i].cities;
    }
    return [];
  }

  function chooseProvince(province) {
    provinceSelect.value = province;
    var cities = province ? citiesOf(province) : [];
    fillSelect(citySelect, province ? "请选择城市" : "请先选择省份", cities.map(function (c) { return { value: c, label: c }; }));
    fillSelect(schoolSelect, "请先选择城市", []);
    chosenSchool = null;
    clearBatches("请先选择学校");
    // A province with one city (重庆市, or one city with schools) needs no second tap.
    if (cities.length === 1) return chooseCity(cities[0]);
    return Promise.resolve();
  }

  function chooseCity(city) {
    citySelect.value = city;
    chosenSchool = null;
    clearBatches("请先选择学校");
    if (!city) {
      fillSelect(schoolSelect, "请先选择城市", []);
      return Promise.resolve();
    }
    var query = "?province=" + encodeURIComponent(provinceSelect.value) + "&city=" + encodeURIComponent(city);
    return api("GET", "/api/v1/schools" + query).then(function (result) {
      if (result.status !== 200) { linkError.textContent = problem(result); return; }
      fillSelect(schoolSelect, "请选择学校", result.data.schools.map(function (s) { return { value: s.code, label: s.name }; }));
    });
  }

  function chooseSchool(code, preselectId) {
    schoolSelect.value = code;
    chosenSchool = code || null;
    if (!code) { clearBatches("请先选择学校"); return Promise.resolve(); }
    clearBatches("正在加载…");
    return api("GET", "/api/v1/schools/" + encodeURIComponent(code) + "/batches").then(function (result) {
      if (chosenSchool !== code) return;  // the student already picked another school
      if (result.status !== 200) { clearBatches(problem(result)); return; }
      renderBatches(result.data.batches, preselectId);
    });
  }

  // Jump the cascade to one school (a search result, the QR code's school, the current link).
  function goTo(province, city, code, preselectId) {
    return chooseProvince(province)
      .then(function () { return citySelect.value === city ? null : chooseCity(city); })
      .then(function () { return chooseSchool(code, preselectId); });
  }

  provinceSelect.addEventListener("change", function () { chooseProvince(provinceSelect.value); });
  citySelect.addEventListener("change", function () { chooseCity(citySelect.value); });
  schoolSelect.addEventListener("change", function () { chooseSchool(schoolSelect.value); });

  $("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var q = $("school-search").value.trim();
    var results = $("search-results");
    results.textContent = "";
    if (!q) return;
    api("GET", "/api/v1/schools?q=" + encodeURIComponent(q)).then(function (result) {
      results.textContent = "";
      if (result.status !== 200) { linkError.textContent = problem(result); return; }
      var found = result.data.schools;
      if (!found.length) {
        var none = document.createElement("li");
        none.className = "muted";
        none.textContent = "没有找到名称包含“" + q + "”的学校";
        results.appendChild(none);
        return;
      }
      found.forEach(function (school) {
        var item = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.dataset.code = school.code;
        button.textContent = school.name;
        var where = document.createElement("small");
        where.textContent = school.province + " " + school.city;
        button.appendChild(where);
        button.disabled = locked;
        button.addEventListener("click", function () {
          results.textContent = "";
          goTo(school.province, school.city, school.code);
        });
        item.appendChild(button);
        results.appendChild(item);
      });
      if (result.data.truncated) {
        var more = document.createElement("li");
        more.className = "muted";
        more.textContent = "结果较多，请输入更完整的学校名称";
        results.appendChild(more);
      }
    });
  });

  linkButton.addEventListener("click", function () {
    var batch = selectedBatch();
    if (!batch) return;
    linkButton.disabled = true;
    linkError.textContent = "";
    api("PUT", "/api/v1/me/enrollment", { batch_id: batch.id }).then(function (result) {
      if (result.status !== 200) {
        linkError.textContent = problem(result);
        linkButton.disabled = false;
        return;
      }
      var enrollment = result.data;
      $("linked-summary").textContent = enrollment.school.name + " · " + enrollment.batch.name;
      page.dataset.preselectBatch = String(enrollment.batch.id);
      $("school-form").hidden = true;
      $("batch-detail").hidden = true;
      linkButton.hidden = true;
      ["current-link", "scene-note"].forEach(function (id) { if ($(id)) $(id).hidden = true; });
      $("linked").hidden = false;
      page.dataset.state = "linked";
    }, function () {
      linkError.textContent = "网络异常，请稍后再试";
      linkButton.disabled = false;
    });
  });

  $("change-button").addEventListener("click", function () {
    $("linked").hidden = true;
    $("school-form").hidden = false;
    linkButton.hidden = false;
    showDetail(selectedBatch());
    page.dataset.state = "ready";
  });

  api("GET", "/api/v1/regions").then(function (result) {
    if (result.status !== 200) { linkError.textContent = problem(result); return null; }
    regions = result.data.provinces;
    fillSelect(provinceSelect, "请选择省份", regions.map(function (r) { return { value: r.province, label: r.province }; }));
    var code = page.dataset.preselectCode;
    if (code) return goTo(page.dataset.preselectProvince, page.dataset.preselectCity, code, page.dataset.preselectBatch);
    return null;
  }).then(function () {
    page.dataset.state = "ready";
  });
})();
