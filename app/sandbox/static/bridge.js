/* WeChat's JS bridge for pages the sandbox phone opens from another origin (the emulator in its own
 * process, SANDBOX_URL): the phone cannot reach into such a frame to install the bridge, so the page
 * loads this script from the emulator and the bridge asks the phone over postMessage instead. The
 * phone's pay sheet answers (SandboxPaySheet.listen() in paysheet.js). Outside the phone's frame
 * (window.name "wechat-browser") it defines nothing: the page then behaves as in any browser.
 */
(function () {
  "use strict";
  if (window.name !== "wechat-browser" || window.parent === window || window.WeixinJSBridge) return;
  var pending = {};
  var next = 0;
  window.addEventListener("message", function (event) {
    var msg = event.data || {};
    if (event.source !== window.parent || msg.type !== "sandbox-pay-result" || !pending[msg.id]) return;
    var callback = pending[msg.id];
    delete pending[msg.id];
    callback({err_msg: msg.err_msg});
  });
  window.WeixinJSBridge = {
    invoke: function (name, params, callback) {
      callback = callback || function () {};
      if (name !== "getBrandWCPayRequest") { callback({err_msg: name + ":fail not supported in the sandbox"}); return; }
      next += 1;
      pending[next] = callback;
      window.parent.postMessage({type: "sandbox-pay", id: next, params: params}, "*");
    },
  };
  document.dispatchEvent(new Event("WeixinJSBridgeReady"));
})();
