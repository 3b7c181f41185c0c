/* 考生报考 (/h5/registration): the cascade 地州 → 县市 → 考点, the major with its 毕业标准, and the courses
   as checkboxes with their exam times, the total following the ticks. The catalogue comes from
   GET /api/v1/batches/<id>/catalog (cacheable), the saved choice from GET /api/v1/me/registration;
   提交 sends PUT /api/v1/me/registration and shows the service's messages at their fields. Once the
   order exists the page is read-only. */
(function () {
  "use strict";

  var page = document.getElementById("registration-page");
  if (!page) return;
  var $ = function (id) { return document.getElementById(id); };
  var tokenMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = tokenMeta ? tokenMeta.getAttribute("content") : "";
  var NETWORK = "网络不稳定，请稍后再试。";
  var district = $("district"), county = $("county"), site = $("site"), major = $("major");
  var courses = $("courses"), total = $("total"), pledge = $("pledge"), submit = $("submit-button");
  var catalog = null, editable = true;

  function yuan(fen) {
    var rest = fen % 100;
    return Math.floor(fen / 100) + (rest ? "." + ("0" + rest).slice(-2) : "") + " 元";
  }

  function options(select, items, placeholder) {
    select.innerHTML = "";
    var first = document.createElement("option");
    first.value = "";
    first.textContent = placeholder;
    select.appendChild(first);
    items.forEach(function (item) {
      var option = document.createElement("option");
      option.value = item.value;
      option.textContent = item.label;
      if (item.disabled) option.disabled = true;
      select.appendChild(option);
    });
  }

  function findDistrict() {
    return catalog.districts.filter(function (d) { return d.name === district.value; })[0];
  }
  function findCounty() {
    var d = findDistrict();
    return d ? d.counties.filter(function (c) { return c.name === county.value; })[0] : null;
  }
  function findMajor() {
    return catalog.majors.filter(function (m) { return m.code === major.value; })[0];
  }

  function fillCounties() {
    var d = findDistrict();
    options(county, d ? d.counties.map(function (c) { return { value: c.name, label: c.name }; }) : [],
      d ? "请选择县市" : "请先选择地州");
    if (d && d.counties.length === 1) county.value = d.counties[0].name;
    fillSites();
  }

  function fillSites() {
    var c = findCounty();
    options(site, c ? c.sites.map(function (s) {
      return { value: s.code, label: s.name + "（剩余 " + s.seats_left + " 个名额）", disabled: s.seats_left <= 0 };
    }) : [], c ? "请选择考点" : "请先选择县市");
    if (c && c.sites.length === 1 && c.sites[0].seats_left > 0) site.value = c.sites[0].code;
    showAddress();
  }

  function showAddress() {
    var c = findCounty();
    var s = c ? c.sites.filter(function (x) { return x.code === site.value; })[0] : null;
    $("site-address").textContent = s ? "考点地址：" + s.address : "";
  }

  function fillCourses(chosen) {
    var m = findMajor();
    $("standard-link").hidden = !(m && m.standard);
    $("standard").hidden = true;
    $("standard").textContent = m && m.standard ? m.standard : "";
    courses.innerHTML = "";
    if (!m) { courses.innerHTML = '<p class="muted">请先选择专业。</p>'; updateTotal(); return; }
    catalog.courses.forEach(function (course) {
      if (course.major_code && course.major_code !== m.code) return;
      var label = document.createElement("label");
      label.className = "course" + (course.cancelled ? " cancelled" : "");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.setAttribute("data-course", course.code);
      box.setAttribute("data-fee", String(course.fee_fen));
      box.checked = chosen.indexOf(course.code) >= 0;
      box.disabled = course.cancelled || !editable;
      var text = document.createElement("span");
      text.textContent = course.code + " " + course.name + (course.major_code ? "" : "（公共课）") + "　" + yuan(course.fee_fen) +
        (course.cancelled ? "（已取消考试）" : "");
      var time = document.createElement("span");
      time.className = "time";
      time.textContent = "考试时间：" + course.exam_time_range;
      text.appendChild(time);
      label.appendChild(box);
      label.appendChild(text);
      courses.appendChild(label);
    });
    updateTotal();
  }

  function ticked() {
    return Array.prototype.slice.call(courses.querySelectorAll("input[data-course]:checked"));
  }

  function updateTotal() {
    var fen = ticked().reduce(function (sum, box) { return sum + Number(box.getAttribute("data-fee")); }, 0);
    total.textContent = yuan(fen);
    total.setAttribute("data-fen", String(fen));
  }

  function clearErrors() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-error]"), function (el) {
      el.textContent = "";
      el.hidden = true;
    });
  }

  function showErrors(errors) {
    errors.forEach(function (e) {
      var el = document.querySelector('[data-error="' + e.field + '"]') || document.querySelector('[data-error="_"]');
      el.textContent = el.textContent ? el.textContent + " " + e.message : e.message;
      el.hidden = false;
    });
  }

  function call(method, url, body) {
    var headers = { Accept: "application/json" };
    if (method !== "GET") { headers["X-CSRFToken"] = CSRF; headers["Content-Type"] = "application/json"; }
    return fetch(url, {
      // The catalogue revalidates with its ETag (a 304 when unchanged): the seats left are current.
      method: method, headers: headers, credentials: "same-origin", cache: "no-cache",
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) { return { status: resp.status, data: data }; });
    });
  }

  function lock(message) {
    editable = false;
    page.setAttribute("data-state", "locked");
    [district, county, site, major, pledge].forEach(function (el) { el.disabled = true; });
    Array.prototype.forEach.call(courses.querySelectorAll("input"), function (el) {
      el.disabled = true;
      if (!el.checked) el.parentNode.hidden = true;  // what was chosen, not what could have been
    });
    submit.hidden = true;
    $("locked-box").hidden = false;
    $("locked-message").textContent = message;
  }

  function show(reg) {
    var sites = [];
    catalog.districts.forEach(function (d) {
      d.counties.forEach(function (c) { c.sites.forEach(function (s) { sites.push([d.name, c.name, s.code]); }); });
    });
    var where = sites.filter(function (x) { return x[2] === reg.site_code; })[0];
    if (where) {
      district.value = where[0];
      fillCounties();
      county.value = where[1];
      fillSites();
      // The candidate's own seat counts as taken: keep it selectable.
      Array.prototype.forEach.call(site.options, function (o) { if (o.value === reg.site_code) o.disabled = false; });
      site.value = where[2];
      showAddress();
    }
    if (reg.major_code) major.value = reg.major_code;
    fillCourses(reg.course_codes || []);
    if (!reg.editable) lock(reg.locked_message);
  }

  district.addEventListener("change", fillCounties);
  county.addEventListener("change", fillSites);
  site.addEventListener("change", showAddress);
  major.addEventListener("change", function () {
    fillCourses(ticked().map(function (b) { return b.getAttribute("data-course"); }));
  });
  courses.addEventListener("change", updateTotal);
  $("standard-link").addEventListener("click", function (event) {
    event.preventDefault();
    $("standard").hidden = !$("standard").hidden;
  });
  pledge.addEventListener("change", function () { submit.disabled = !pledge.checked; });

  submit.addEventListener("click", function () {
    if (!pledge.checked) return;
    clearErrors();
    submit.disabled = true;
    call("PUT", "/api/v1/me/registration", {
      site_code: site.value || null,
      major_code: major.value || null,
      course_codes: ticked().map(function (b) { return b.getAttribute("data-course"); }),
      pledge: pledge.checked,
    }).then(function (res) {
      submit.disabled = !pledge.checked;
      if (res.status === 200) {
        $("saved").hidden = false;
        $("pay-link").href = res.data.pay_url;
        page.setAttribute("data-saved", "1");
        return;
      }
      $("saved").hidden = true;
      if (res.status === 409 && res.data.errors) { lock(res.data.errors[0].message); return; }
      if (res.data && res.data.errors) { showErrors(res.data.errors); return; }
      showErrors([{ field: "_", message: res.status === 401 ? "登录已过期，请刷新页面重新进入。" : NETWORK }]);
    }).catch(function () { submit.disabled = !pledge.checked; showErrors([{ field: "_", message: NETWORK }]); });
  });

  Promise.all([
    call("GET", "/api/v1/batches/" + page.getAttribute("data-batch") + "/catalog"),
    call("GET", "/api/v1/me/registration"),
  ]).then(function (answers) {
    var cat = answers[0], reg = answers[1];
    if (cat.status !== 200 || reg.status !== 200) {
      showErrors([{ field: "_", message: (reg.data.errors && reg.data.errors[0].message) || NETWORK }]);
      return;
    }
    catalog = cat.data;
    options(district, catalog.districts.map(function (d) { return { value: d.name, label: d.name }; }), "请选择地州");
    options(major, catalog.majors.map(function (m) {
      return { value: m.code, label: m.name + "（" + m.code + "）" + (m.special ? "（特殊专业）" : "") };
    }), "请选择专业");
    page.setAttribute("data-state", "editing");
    show(reg.data);
    if (reg.data.site_code && reg.data.editable) $("saved").hidden = false;
  }).catch(function () { showErrors([{ field: "_", message: NETWORK }]); });
})();
