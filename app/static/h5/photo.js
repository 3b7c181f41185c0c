/* 上传照片: preview the chosen picture, upload it with a progress bar (XMLHttpRequest: fetch has no
   upload progress), then show the verdict of POST /api/v1/me/photos: what to fix first, the rest
   folded. On load, the latest photo's verdict is shown (GET /api/v1/me/photos/latest). */
(function () {
  "use strict";

  var page = document.getElementById("photo-page");
  if (!page) return;
  var tokenMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = tokenMeta ? tokenMeta.getAttribute("content") : "";
  var NETWORK = "网络不稳定，上传没有完成，请稍后再试。";

  var $ = function (id) { return document.getElementById(id); };
  var progress = $("upload-progress");
  var status = $("upload-status");
  var error = $("upload-error");
  var previewUrl = null;

  function setState(state) { page.setAttribute("data-state", state); }

  function showError(text) {
    error.textContent = text || "";
    error.hidden = !text;
  }

  function kb(bytes) {
    return (Math.round(bytes / 102.4) / 10).toFixed(1) + " KB";
  }

  function render(photo) {
    var box = $("result");
    box.hidden = false;
    box.setAttribute("data-passed", photo.passed ? "true" : "false");
    var verdict = $("result-verdict");
    verdict.textContent = photo.passed ? "照片符合要求 ✓" : "照片未通过检查，请按下面的提示修改";
    verdict.className = "verdict " + (photo.passed ? "pass" : "fail");

    var img = $("result-image");
    var size = $("result-size");
    if (photo.normalized) {
      img.src = photo.normalized.url;
      img.parentNode.hidden = false;
      size.textContent = photo.normalized.width + "×" + photo.normalized.height + " 像素 · " +
        kb(photo.normalized.bytes) + " · " + (photo.normalized.format === "png" ? "PNG" : "JPG");
      size.setAttribute("data-bytes", String(photo.normalized.bytes));
      size.setAttribute("data-width", String(photo.normalized.width));
      size.setAttribute("data-height", String(photo.normalized.height));
      size.hidden = false;
    } else {
      img.removeAttribute("src");
      img.parentNode.hidden = true;
      size.hidden = true;
    }

    // Failing items first, each with what to do; advice next; the passing ones folded. The
    // measured values stay out of the student's view (staff see them on the decision page).
    var failing = $("checks-failing");
    var passedList = $("checks-passed-list");
    failing.textContent = "";
    passedList.textContent = "";
    var rank = function (check) { return check.ok ? 2 : (check.blocking === false ? 1 : 0); };
    var ordered = photo.checks.slice().sort(function (a, b) { return rank(a) - rank(b); });
    var passedCount = 0;
    ordered.forEach(function (check) {
      var li = document.createElement("li");
      li.setAttribute("data-check", check.name);
      li.setAttribute("data-ok", check.ok ? "true" : "false");
      li.className = check.ok ? "ok" : (check.blocking === false ? "advice" : "fail");
      var text = document.createElement("div");
      var label = document.createElement("strong");
      label.textContent = check.label || check.name;
      text.appendChild(label);
      if (!check.ok) {
        var advice = document.createElement("span");
        advice.className = "advice";
        advice.textContent = check.advice || check.message;
        text.appendChild(advice);
      }
      li.appendChild(text);
      if (check.ok) {
        passedCount += 1;
        passedList.appendChild(li);
      } else {
        failing.appendChild(li);
      }
    });
    failing.hidden = failing.children.length === 0;
    var folded = $("checks-passed");
    folded.hidden = passedCount === 0;
    folded.open = false;
    $("checks-passed-summary").textContent =
      (failing.children.length ? "其他 " + passedCount + " 项符合要求" : "全部 " + passedCount + " 项符合要求");

    // A photo a reviewer returned or refused is never offered for 开始核验 again.
    var rejected = $("result-rejected");
    if (photo.rejected) {
      box.setAttribute("data-rejected", "true");
      verdict.textContent = "这张照片已被审核老师" + photo.rejected.status_label + "，不能再次提交";
      verdict.className = "verdict fail";
      rejected.textContent = (photo.rejected.reason ? "原因：" + photo.rejected.reason + "。" : "") +
        "请按审核意见重新拍摄，上传一张新照片。";
      rejected.hidden = false;
    } else {
      box.removeAttribute("data-rejected");
      rejected.hidden = true;
    }
    var usable = photo.passed && !photo.rejected;
    $("result-caption").textContent = usable ? "自动处理后的照片（将用于提交）" : "自动处理后的照片";
    $("next-step").hidden = !usable;
    lastPhotoId = usable ? photo.id : null;
  }
  // 开始核验 (pay_first): create the attempt and its order, then pay on /h5/pay/<id>. Inside WeChat
  // (or the sandbox phone's frame) the order is for JSAPI; in any other browser a Native QR code.
  // 提交审核 (review_first, free): the attempt goes to the identity check or review, no order; the
  // status page follows it. Where the batch's 承诺 is made now, the pledge (and signature) go along.
  var lastPhotoId = null;
  var startButton = $("start-verify");
  var nextStep = $("next-step");
  var paysNow = !nextStep || (nextStep.getAttribute("data-flow") || "pay_first") === "pay_first";
  var pledgeFields = startButton && window.PledgeFields ? window.PledgeFields() : null;
  if (startButton) {
    startButton.addEventListener("click", function () {
      if (lastPhotoId === null) return;
      var inWechat = /MicroMessenger/i.test(navigator.userAgent) || window.name === "wechat-browser";
      var startError = $("start-error");
      startError.hidden = true;
      var body = { photo_id: lastPhotoId, channel: inWechat ? "jsapi" : "native" };
      if (pledgeFields && $("pledge")) {
        var promised = pledgeFields.collect();
        if (promised === null) return;
        body.pledge = promised.pledge;
        if (promised.signature) body.signature = promised.signature;
      }
      startButton.disabled = true;
      var req = new XMLHttpRequest();
      req.open("POST", "/api/v1/me/submissions");
      req.setRequestHeader("X-CSRFToken", CSRF);
      req.setRequestHeader("Content-Type", "application/json");
      req.setRequestHeader("Accept", "application/json");
      req.onload = function () {
        var data = null;
        try { data = JSON.parse(req.responseText); } catch (e) { data = null; }
        // Created, or already under way (a second tap, or WeChat Pay was down: the pay page retries).
        var id = data && (data.id || data.submission_id);
        if (req.status === 201 || (id && (req.status === 422 || req.status === 503))) {
          var paying = paysNow || (data && data.status === "awaiting_payment");
          window.location.href = paying ? "/h5/pay/" + id : "/h5/status";
          return;
        }
        startButton.disabled = false;
        var rest = data && Array.isArray(data.errors) && pledgeFields ? pledgeFields.showErrors(data.errors) : null;
        var text = rest === null ? errorsOf(req) : rest.join(" ");
        startError.textContent = text;
        startError.hidden = !text;
        // The 须知 was not acknowledged (e.g. the link changed in another tab): offer it.
        var unread = data && Array.isArray(data.errors) && data.errors.some(function (e) { return e.field === "notice"; });
        if (unread) {
          var link = document.createElement("a");
          link.href = "/h5/notice";
          link.id = "start-notice-link";
          link.textContent = " 去阅读须知";
          startError.appendChild(link);
        }
      };
      req.onerror = function () {
        startButton.disabled = false;
        startError.textContent = NETWORK;
        startError.hidden = false;
      };
      req.send(JSON.stringify(body));
    });
  }

  function errorsOf(xhr) {
    var data = null;
    try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
    if (data && Array.isArray(data.errors)) {
      return data.errors.map(function (e) { return e.message; }).join(" ");
    }
    if (xhr.status === 401) return "登录已过期，请刷新页面重新进入。";
    if (xhr.status === 413) return "照片文件太大，请上传 " + page.getAttribute("data-max-mb") + " MB 以内的照片。";
    if (data && data.error && data.error.message) return data.error.message;
    return NETWORK;
  }

  function upload(file) {
    showError("");
    var maxBytes = Number(page.getAttribute("data-max-mb")) * 1024 * 1024;
    if (file.size > maxBytes) {
      showError("照片文件太大，请上传 " + page.getAttribute("data-max-mb") + " MB 以内的照片。");
      return;
    }
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    $("preview").src = previewUrl;
    $("preview-box").hidden = false;

    var form = new FormData();
    form.append("file", file, file.name || "photo.jpg");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/me/photos");
    xhr.setRequestHeader("X-CSRFToken", CSRF);
    xhr.setRequestHeader("Accept", "application/json");
    progress.hidden = false;
    progress.value = 0;
    status.textContent = "正在上传…";
    setState("uploading");
    xhr.upload.onprogress = function (event) {
      if (event.lengthComputable) {
        progress.value = Math.round((event.loaded / event.total) * 100);
        status.textContent = "正在上传… " + progress.value + "%";
      }
    };
    xhr.upload.onload = function () {
      progress.value = 100;
      status.textContent = "上传完成，正在检查照片…";
      setState("checking");
    };
    xhr.onload = function () {
      progress.hidden = true;
      if (xhr.status === 201 || xhr.status === 200) {
        status.textContent = "检查完成。";
        render(JSON.parse(xhr.responseText));
        setState("done");
        $("result").scrollIntoView({ behavior: "smooth", block: "start" });
      } else {
        status.textContent = "";
        showError(errorsOf(xhr));
        setState("error");
      }
    };
    xhr.onerror = function () {
      progress.hidden = true;
      status.textContent = "";
      showError(NETWORK);
      setState("error");
    };
    xhr.send(form);
  }

  ["file-camera", "file-album"].forEach(function (id) {
    var input = $(id);
    if (!input) return;
    input.addEventListener("change", function () {
      if (input.files && input.files[0]) upload(input.files[0]);
      input.value = "";  // choosing the same file again uploads it again
    });
  });

  // The last verdict, so a student coming back sees where they stand (none yet: nothing to ask).
  if (page.getAttribute("data-has-photo") !== "1") return;
  var xhr = new XMLHttpRequest();
  xhr.open("GET", "/api/v1/me/photos/latest");
  xhr.setRequestHeader("Accept", "application/json");
  xhr.onload = function () {
    if (xhr.status === 200 && page.getAttribute("data-state") === "ready") {
      render(JSON.parse(xhr.responseText));
    }
  };
  xhr.send();
})();
