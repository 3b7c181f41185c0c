/* 缴费核验 (/h5/pay/<id>): pay the fee, then follow the identity check until its result.

   Inside WeChat (or the sandbox phone's "WeChat browser" frame) 「确认支付」 asks the server for the
   order to pay now (GET …?renew=1&channel=jsapi: a fresh order if the last one expired) and calls
   WeixinJSBridge.invoke('getBrandWCPayRequest'). Anywhere else the page shows the Native QR code
   with its 3-minute countdown and replaces it by a fresh order when it runs out. The sheet's ":ok"
   is only the client's word: the state always comes from GET /api/v1/me/submissions/<id>, polled
   every 2 s while something is under way; 查询缴费结果 / 刷新结果数据 ask WeChat Pay directly
   (POST …/refresh) for when the notification is late. */
(function () {
  "use strict";

  var page = document.getElementById("pay-page");
  if (!page) return;
  var $ = function (id) { return document.getElementById(id); };
  var tokenMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = tokenMeta ? tokenMeta.getAttribute("content") : "";
  var API = "/api/v1/me/submissions/" + page.getAttribute("data-submission");
  var POLL_MS = 2000;
  var TTL_S = Number(page.getAttribute("data-ttl-minutes") || 3) * 60;
  var NETWORK = "网络不稳定，请稍后再试。";
  var inWechat = page.getAttribute("data-in-wechat") === "1" || /MicroMessenger/i.test(navigator.userAgent) ||
    window.name === "wechat-browser";  // the sandbox phone's frame: its bridge is installed from outside
  var mode = inWechat ? "jsapi" : "native";
  page.setAttribute("data-mode", mode);

  var payBox = $("pay-box"), payButton = $("pay-button"), queryButton = $("query-button");
  var qrBox = $("qr-box"), qrImage = $("qr-image"), qrSeconds = $("qr-seconds"), qrNotice = $("qr-notice");
  var scanButton = $("scan-button"), message = $("pay-message");
  var verifying = $("verifying"), refreshButton = $("refresh-button"), result = $("result");

  var current = null;         // the last submission the server sent
  var paid = false;           // the sheet (or the sandbox scan) said paid: wait for the server to agree
  var pollTimer = null, tickTimer = null, pollsWhilePaid = 0, autoQueried = false;
  var shownOrder = null, expiresAt = 0, clockOffset = 0, renewing = false;

  function setState(state) { page.setAttribute("data-state", state); }

  // A fee to pay now: before anything else (pay_first), or after 通过 (review_first, in its window).
  function payable(status) { return status === "awaiting_payment" || status === "approved_unpaid"; }
  var windowBox = $("window-box"), approvedBox = $("approved-unpaid");

  function say(text, isError) {
    message.textContent = text || "";
    message.className = "message" + (isError ? " error" : "");
  }

  function call(method, url, body) {
    var headers = { Accept: "application/json" };
    if (method !== "GET") { headers["X-CSRFToken"] = CSRF; headers["Content-Type"] = "application/json"; }
    return fetch(url, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (resp) {
      var date = Date.parse(resp.headers.get("Date") || "");
      if (!isNaN(date)) clockOffset = date - Date.now();  // the countdown follows the server's clock
      return resp.json().catch(function () { return {}; }).then(function (data) {
        return { status: resp.status, data: data };
      });
    });
  }

  function errorText(res) {
    var data = res.data || {};
    if (Array.isArray(data.errors) && data.errors.length) return data.errors.map(function (e) { return e.message; }).join(" ");
    if (res.status === 401) return "登录已过期，请刷新页面重新进入。";
    if (data.error && data.error.message) return data.error.message;
    return NETWORK;
  }

  // --- polling --------------------------------------------------------------------------------------

  function schedulePoll() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, POLL_MS);
  }

  function poll() {
    call("GET", API).then(function (res) {
      if (res.status !== 200) { schedulePoll(); return; }
      if (paid && payable(res.data.status)) {
        pollsWhilePaid += 1;
        // The notification is late: ask WeChat Pay once by ourselves (查询缴费结果).
        if (pollsWhilePaid >= 3 && !autoQueried) { autoQueried = true; query(queryButton); return; }
      }
      render(res.data);
    }).catch(function () { schedulePoll(); });
  }

  function query(button) {
    button.disabled = true;
    call("POST", API + "/refresh").then(function (res) {
      button.disabled = false;
      if (res.status === 200) {
        if (payable(res.data.status) && button === queryButton) {
          say(paid ? "暂未查询到支付结果，请稍候再查。" : "暂未查询到支付记录。");
        }
        render(res.data);
      } else {
        say(errorText(res), true);
        schedulePoll();
      }
    }).catch(function () { button.disabled = false; say(NETWORK, true); schedulePoll(); });
  }

  // --- rendering ------------------------------------------------------------------------------------

  function render(sub) {
    current = sub;
    page.setAttribute("data-status", sub.status);
    if (approvedBox) approvedBox.hidden = sub.status !== "approved_unpaid";
    if (payable(sub.status) && page.getAttribute("data-window") !== "open" && !paid) {
      // Outside the pay window nothing can be paid: say when it opens, or that it closed.
      setState("closed");
      verifying.hidden = true;
      result.hidden = true;
      payBox.hidden = true;
      windowBox.hidden = false;
      return;
    }
    windowBox.hidden = true;
    if (payable(sub.status)) {
      verifying.hidden = true;
      result.hidden = true;
      payBox.hidden = false;
      if (paid) {
        setState("paying");
        payButton.hidden = true;
        qrBox.hidden = true;
        queryButton.hidden = false;
        stopCountdown();
        schedulePoll();
      } else if (mode === "jsapi") {
        setState("ready");
        payButton.hidden = false;
        qrBox.hidden = true;
      } else {
        setState("qr");
        payButton.hidden = true;
        showQr(sub.order);
        schedulePoll();
      }
      return;
    }
    stopCountdown();
    payBox.hidden = true;
    if (sub.status === "verifying") {
      setState("verifying");
      result.hidden = true;
      verifying.hidden = false;
      schedulePoll();
      return;
    }
    clearTimeout(pollTimer);
    setState("done");
    verifying.hidden = true;
    showResult(sub);
  }

  var GOOD = { pending_review: true, in_review: true, approved: true };
  var BAD = { verify_failed: true, refused: true, returned: true, void: true };

  function showResult(sub) {
    result.hidden = false;
    result.setAttribute("data-status", sub.status);
    var label = $("result-label");
    label.textContent = sub.status === "pending_review" ? "身份核验通过 · 等待人工审核" : sub.status_label;
    label.className = "status-label" + (GOOD[sub.status] ? " ok" : BAD[sub.status] ? " bad" : "");
    var reason = $("result-reason");
    var why = sub.reason || (sub.verification && sub.status === "verify_failed" ? sub.verification.reason : "");
    reason.textContent = why ? "原因：" + why : "";
    reason.hidden = !why;
    $("result-message").textContent = sub.next_step.message;
    var link = $("result-link");
    if (sub.next_step.path && sub.next_step.link_text) {
      link.href = sub.next_step.path;
      link.textContent = sub.next_step.link_text;
      link.hidden = false;
    } else {
      link.hidden = true;
    }
  }

  // --- Native: the QR code and its countdown ---------------------------------------------------------

  function showQr(order) {
    qrBox.hidden = false;
    if (!order || !order.qr_url || Date.parse(order.expires_at) - (Date.now() + clockOffset) < 1000) {
      renew(shownOrder !== null);
      return;
    }
    if (shownOrder !== order.out_trade_no) {
      if (shownOrder !== null) qrNotice.hidden = false;
      shownOrder = order.out_trade_no;
      qrImage.src = order.qr_url;
      qrImage.setAttribute("data-code-url", order.code_url);
      qrImage.setAttribute("data-out-trade-no", order.out_trade_no);
    }
    expiresAt = Date.parse(order.expires_at);
    tick();
    if (!tickTimer) tickTimer = setInterval(tick, 1000);
  }

  function tick() {
    // The Date header has whole seconds: never show more than an order's lifetime.
    var left = Math.max(0, Math.min(TTL_S, Math.ceil((expiresAt - (Date.now() + clockOffset)) / 1000)));
    qrSeconds.textContent = String(left);  // 支付倒计时173秒, as the 新疆自考 pay page counts
    $("qr-countdown").setAttribute("data-seconds", String(left));
    if (left <= 0 && !paid) renew(true);
  }

  function stopCountdown() { clearInterval(tickTimer); tickTimer = null; }

  function renew(expired) {
    if (renewing) return;
    renewing = true;
    call("GET", API + "?renew=1&channel=" + mode).then(function (res) {
      renewing = false;
      if (res.status === 200) {
        if (expired) qrNotice.hidden = false;
        say("");
        render(res.data);
      } else {
        stopCountdown();
        say(errorText(res), true);
        payButton.textContent = mode === "native" ? "重新获取二维码" : payButton.textContent;
        payButton.hidden = false;
        payButton.disabled = false;
      }
    }).catch(function () { renewing = false; say(NETWORK, true); payButton.hidden = false; });
  }

  // --- JSAPI: WeixinJSBridge -------------------------------------------------------------------------

  function whenBridge(ready, missing) {
    if (typeof window.WeixinJSBridge !== "undefined") { ready(); return; }
    var done = false;
    document.addEventListener("WeixinJSBridgeReady", function () { if (!done) { done = true; ready(); } }, { once: true });
    setTimeout(function () { if (!done) { done = true; missing(); } }, 5000);
  }

  function payInWechat() {
    payButton.disabled = true;
    say("正在发起支付…");
    call("GET", API + "?renew=1&channel=jsapi").then(function (res) {
      if (res.status !== 200) { payButton.disabled = false; say(errorText(res), true); return; }
      if (!payable(res.data.status) || !res.data.order || !res.data.order.jsapi) {
        payButton.disabled = false;
        render(res.data);
        return;
      }
      whenBridge(function () {
        window.WeixinJSBridge.invoke("getBrandWCPayRequest", res.data.order.jsapi, function (r) {
          payButton.disabled = false;
          var outcome = (r && r.err_msg) || "";
          if (outcome === "get_brand_wcpay_request:ok") {
            paid = true;
            say("支付成功，正在确认缴费结果…");
            render(current);
            poll();
          } else if (outcome === "get_brand_wcpay_request:cancel") {
            say("已取消支付。需要时可再次点击「确认支付」。");
          } else {
            say("支付未完成。如已扣款，请点击「查询缴费结果」。", true);
            queryButton.hidden = false;
          }
        });
      }, function () {
        payButton.disabled = false;
        say("请在微信中打开本页面完成支付。", true);
      });
    }).catch(function () { payButton.disabled = false; say(NETWORK, true); });
  }

  payButton.addEventListener("click", function () {
    if (mode === "jsapi") { payInWechat(); return; }
    payButton.hidden = true;
    say("");
    renew(false);
  });
  queryButton.addEventListener("click", function () { query(queryButton); });
  refreshButton.addEventListener("click", function () { query(refreshButton); });

  // The sandbox: "scan" the code with the phone's current user (the emulator's /_sandbox/pay/scan, on
  // this origin or on the emulator's own: its phone cookie travels with the request either way).
  if (scanButton) {
    var sandboxBase = page.getAttribute("data-sandbox-base") || "/_sandbox";
    scanButton.addEventListener("click", function () {
      var codeUrl = qrImage.getAttribute("data-code-url");
      if (!codeUrl) return;
      scanButton.disabled = true;
      fetch(sandboxBase + "/pay/scan", {
        method: "POST", credentials: sandboxBase.charAt(0) === "/" ? "same-origin" : "include",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ code_url: codeUrl }),
      }).then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (data) {
          scanButton.disabled = false;
          if (!resp.ok) { say((data && data.message) || "扫码支付失败", true); return; }
          paid = true;
          say("已用沙箱手机扫码支付，正在确认缴费结果…");
          render(current);
          poll();
        });
      }).catch(function () { scanButton.disabled = false; say(NETWORK, true); });
    });
  }

  // First look: where does this attempt stand?
  call("GET", API).then(function (res) {
    if (res.status === 200) { render(res.data); return; }
    setState("error");
    say(errorText(res), true);
    payBox.hidden = false;
    payButton.hidden = true;
  }).catch(function () { setState("error"); payBox.hidden = false; say(NETWORK, true); });
})();
