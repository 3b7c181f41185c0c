/* The sandbox's WeChat Pay sheet (see templates/sandbox/_paysheet.html for the contract).
 *
 * Wiring for the H5 pay page (/h5/pay/<submission>) — the same code runs in WeChat and here:
 *   function pay(params) {               // params = the "jsapi" dict from the API (appId, timeStamp,
 *     WeixinJSBridge.invoke("getBrandWCPayRequest", params, function (res) {   // nonceStr, package,
 *       if (res.err_msg === "get_brand_wcpay_request:ok") { poll the submission }      // signType, paySign)
 *       else if (res.err_msg === "get_brand_wcpay_request:cancel") { show 「已取消支付」 }
 *       else { show 「支付失败」 and the 查询缴费结果 button }
 *     });
 *   }
 *   if (window.WeixinJSBridge) pay(params); else document.addEventListener("WeixinJSBridgeReady", ...);
 * The phone page opens H5 pages in an iframe, on the same origin when the emulator is mounted in the
 * service: after each iframe load it calls SandboxPaySheet.installBridge(iframe.contentWindow), which
 * defines WeixinJSBridge there and fires WeixinJSBridgeReady, so the page's code cannot tell the
 * sandbox from WeChat. A frame on another origin (the emulator in its own process) can post
 * {type: "sandbox-pay", params} to the phone instead (SandboxPaySheet.listen()): bridge.js does.
 * "ok" only means the sheet said so — as in WeChat, the page must confirm with the server.
 */
(function () {
  "use strict";
  var BASE = "/_sandbox/pay";
  var el = function (id) { return document.getElementById(id); };
  var pending = null;  // {resolve, order}

  function yuan(fen) { return "¥" + (Math.floor(fen / 100)) + "." + String(fen % 100).padStart(2, "0"); }

  function finish(errMsg) {
    el("paysheet").hidden = true;
    var p = pending; pending = null;
    if (p) p.resolve({err_msg: "get_brand_wcpay_request:" + errMsg});
  }

  function act(action) {
    if (!pending) return;
    var btn = el("paysheet-pay");
    btn.disabled = true;
    el("paysheet-error").textContent = "";
    fetch(BASE + "/" + encodeURIComponent(pending.order.out_trade_no), {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      credentials: "same-origin",
      body: JSON.stringify({action: action}),
    }).then(function (resp) {
      return resp.json().then(function (data) { return {ok: resp.ok, data: data}; });
    }).then(function (res) {
      btn.disabled = false;
      if (action === "cancel") return finish("cancel");
      if (res.ok) return finish("ok");
      el("paysheet-error").textContent = res.data.message || "支付失败";
    }).catch(function () {
      btn.disabled = false;
      el("paysheet-error").textContent = "网络异常，请重试";
    });
  }

  function open(params) {
    return new Promise(function (resolve) {
      if (pending) { resolve({err_msg: "get_brand_wcpay_request:fail"}); return; }
      var match = /^prepay_id=(.+)$/.exec((params && params["package"]) || "");
      if (!match) { resolve({err_msg: "get_brand_wcpay_request:fail"}); return; }
      var query = new URLSearchParams();
      ["appId", "timeStamp", "nonceStr", "package", "signType", "paySign"].forEach(function (k) {
        if (params[k] !== undefined) query.set(k, params[k]);
      });
      fetch(BASE + "/_ctl/prepay/" + encodeURIComponent(match[1]) + "?" + query.toString(), {credentials: "same-origin"})
        .then(function (resp) { return resp.json().then(function (d) { return {ok: resp.ok, data: d}; }); })
        .then(function (res) {
          if (!res.ok || res.data.trade_state !== "NOTPAY") {
            resolve({err_msg: "get_brand_wcpay_request:fail", detail: res.data.message || res.data.trade_state});
            return;
          }
          pending = {resolve: resolve, order: res.data};
          el("paysheet-merchant").textContent = res.data.merchant_name;
          el("paysheet-desc").textContent = res.data.description;
          el("paysheet-amount").textContent = yuan(res.data.amount_fen);
          el("paysheet-error").textContent = "";
          el("paysheet").hidden = false;
          el("paysheet-pay").focus();
        })
        .catch(function () { resolve({err_msg: "get_brand_wcpay_request:fail"}); });
    });
  }

  function installBridge(win) {
    win.WeixinJSBridge = {
      invoke: function (name, params, callback) {
        if (name !== "getBrandWCPayRequest") {
          if (callback) callback({err_msg: name + ":fail not supported in the sandbox"});
          return;
        }
        open(params).then(function (res) { if (callback) callback(res); });
      },
    };
    try { win.document.dispatchEvent(new win.Event("WeixinJSBridgeReady")); } catch (e) { /* not loaded yet */ }
  }

  function listen() {
    window.addEventListener("message", function (event) {
      var msg = event.data || {};
      if (msg.type !== "sandbox-pay" || !event.source) return;
      open(msg.params).then(function (res) {
        event.source.postMessage({type: "sandbox-pay-result", id: msg.id, err_msg: res.err_msg}, event.origin || "*");
      });
    });
  }

  el("paysheet-pay").addEventListener("click", function () { act("pay"); });
  el("paysheet-cancel").addEventListener("click", function () { act("cancel"); });
  el("paysheet-close").addEventListener("click", function () { act("cancel"); });
  window.SandboxPaySheet = {open: open, installBridge: installBridge, listen: listen};
})();
