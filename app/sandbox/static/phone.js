/* The sandbox phone: a WeChat chat with the official account, driven by /_sandbox/phone/... JSON.
 *
 * Everything from the chat is put on the page with textContent / attributes, never as HTML. The one
 * markup WeChat itself renders in a text message, <a href="...">...</a>, is rebuilt as a real link
 * (http(s) or same-site paths only), as the WeChat app does.
 */
(function () {
  "use strict";

  var API = "/_sandbox/phone";
  var POLL_MS = 1000;
  var MENU_REFRESH_POLLS = 10;
  var TIME_GAP_S = 5 * 60;

  var $ = function (id) { return document.getElementById(id); };
  var el = {
    phone: $("phone"), chat: $("chat"), empty: $("empty-state"), select: $("user-select"),
    newToggle: $("new-user-toggle"), newForm: $("new-user-form"), newNickname: $("new-nickname"),
    unfollow: $("unfollow-btn"), noMenu: $("no-menu"), pushCommand: $("push-command"),
    followBar: $("follow-bar"), follow: $("follow-btn"), menuBar: $("menu-bar"), menuButtons: $("menu-buttons"),
    toInput: $("to-input"), toMenu: $("to-menu"), inputBar: $("input-bar"), text: $("text-input"),
    image: $("image-input"), send: $("send-btn"), subMenu: $("sub-menu"), browser: $("browser"),
    frame: $("browser-frame"), browserTitle: $("browser-title"), browserExternal: $("browser-external"),
    browserClose: $("browser-close"), toast: $("toast"),
    openidRow: $("openid-row"), openidText: $("openid-text"), openidCopy: $("openid-copy")
  };

  var state = {
    users: [], user: null, menu: null, pushCommand: "",
    entries: {}, lastAt: 0, pending: [], mode: "menu", polls: 0, stick: true
  };

  // --- talking to the sandbox -------------------------------------------------------------------

  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body instanceof FormData) {
      options.body = body;
    } else if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(API + path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var message = (data && data.error && data.error.message) || ("请求失败（" + response.status + "）");
          throw new Error(message);
        }
        return data;
      });
    });
  }

  var toastTimer = null;
  function toast(message) {
    el.toast.textContent = message;
    el.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.toast.hidden = true; }, 2500);
  }

  // --- state ------------------------------------------------------------------------------------

  function applySnapshot(snapshot) {
    state.users = snapshot.users || [];
    state.user = snapshot.user || null;
    state.menu = snapshot.menu || null;
    state.pushCommand = snapshot.push_command || "";
    state.entries = {};
    state.lastAt = 0;
    state.pending = [];
    state.mode = "menu";
    mergeEntries(snapshot.chat || [], true);
    renderUsers();
    renderBottom();
    renderChat(true);
  }

  function mergeEntries(entries, quiet) {
    var added = false;
    entries.forEach(function (entry) {
      if (!entry || !entry.id || state.entries[entry.id]) { return; }
      state.entries[entry.id] = entry;
      if (entry.at > state.lastAt) { state.lastAt = entry.at; }
      if (entry.direction === "in") { dropPending(entry); }
      added = true;
    });
    if (added && !quiet) { renderChat(false); }
    return added;
  }

  function dropPending(entry) {
    state.pending = state.pending.filter(function (p) {
      return !(p.type === entry.type && (p.type !== "text" || p.text === entry.text));
    });
  }

  function sortedEntries() {
    return Object.keys(state.entries).map(function (id) { return state.entries[id]; })
      .sort(function (a, b) { return a.at - b.at; });
  }

  // --- rendering: users, bottom bar, menu -------------------------------------------------------

  function renderUsers() {
    el.select.textContent = "";
    var placeholder = document.createElement("option");
    placeholder.value = "";
    placeholder.textContent = state.users.length ? "— 选择用户 —" : "— 还没有用户 —";
    el.select.appendChild(placeholder);
    state.users.forEach(function (user) {
      var option = document.createElement("option");
      option.value = user.openid;
      option.textContent = user.nickname + (user.subscribed ? "" : "（未关注）");
      el.select.appendChild(option);
    });
    el.select.value = state.user ? state.user.openid : "";
    el.empty.hidden = !!state.user;
    if (!state.user && !state.users.length) { el.newForm.hidden = false; }
    el.unfollow.hidden = !(state.user && state.user.subscribed);
    // Operators are made by openid (flask wechat add-operator OPENID): show it, ready to copy.
    el.openidRow.hidden = !state.user;
    el.openidText.textContent = state.user ? state.user.openid : "";
  }

  function menuButtons() {
    return (state.menu && Array.isArray(state.menu.button)) ? state.menu.button : [];
  }

  function subButtons(button) {
    var sub = button.sub_button;
    if (sub && !Array.isArray(sub) && Array.isArray(sub.list)) { sub = sub.list; }  // menu/get's shape
    return Array.isArray(sub) ? sub : [];
  }

  function renderBottom() {
    var user = state.user;
    var subscribed = !!(user && user.subscribed);
    var hasMenu = menuButtons().length > 0;
    if (!hasMenu) { state.mode = "input"; }
    el.followBar.hidden = !(user && !subscribed);
    el.menuBar.hidden = !(subscribed && hasMenu && state.mode === "menu");
    el.inputBar.hidden = !(subscribed && (!hasMenu || state.mode === "input"));
    el.toMenu.hidden = !hasMenu;
    el.noMenu.hidden = !(subscribed && !hasMenu);
    el.pushCommand.textContent = state.pushCommand;
    el.unfollow.hidden = !subscribed;
    closeSubMenu();
    renderMenu();
  }

  function renderMenu() {
    el.menuButtons.textContent = "";
    menuButtons().forEach(function (button) {
      var node = document.createElement("button");
      node.type = "button";
      node.className = "menu-btn";
      node.textContent = button.name || "";
      if (subButtons(button).length) {
        node.classList.add("has-sub");
        node.addEventListener("click", function (event) {
          event.stopPropagation();
          toggleSubMenu(node, subButtons(button));
        });
      } else {
        node.addEventListener("click", function () { closeSubMenu(); act(button); });
      }
      el.menuButtons.appendChild(node);
    });
  }

  function toggleSubMenu(anchor, buttons) {
    if (!el.subMenu.hidden && el.subMenu.dataset.anchor === anchor.textContent) { closeSubMenu(); return; }
    closeSubMenu();
    el.subMenu.textContent = "";
    buttons.forEach(function (button) {
      var item = document.createElement("button");
      item.type = "button";
      item.setAttribute("role", "menuitem");
      item.textContent = button.name || "";
      item.addEventListener("click", function (event) {
        event.stopPropagation();
        closeSubMenu();
        act(button);
      });
      el.subMenu.appendChild(item);
    });
    el.subMenu.dataset.anchor = anchor.textContent;
    el.subMenu.hidden = false;
    anchor.classList.add("open");
    var phone = el.phone.getBoundingClientRect();
    var rect = anchor.getBoundingClientRect();
    var width = Math.max(el.subMenu.offsetWidth, rect.width - 16);
    var left = rect.left - phone.left + rect.width / 2 - width / 2;
    left = Math.max(6, Math.min(left, phone.width - width - 6));
    el.subMenu.style.width = width + "px";
    el.subMenu.style.left = left + "px";
    el.subMenu.style.bottom = (phone.bottom - rect.top + 8) + "px";
  }

  function closeSubMenu() {
    el.subMenu.hidden = true;
    el.subMenu.dataset.anchor = "";
    Array.prototype.forEach.call(el.menuButtons.children, function (b) { b.classList.remove("open"); });
  }

  function findMenuName(key, type) {
    var found = null;
    menuButtons().forEach(function (button) {
      [button].concat(subButtons(button)).forEach(function (b) {
        if (!found && b.type === type && (b.key === key || b.url === key)) { found = b.name; }
      });
    });
    return found;
  }

  // --- rendering: the chat ----------------------------------------------------------------------

  function nearBottom() {
    return el.chat.scrollHeight - el.chat.scrollTop - el.chat.clientHeight < 80;
  }

  function scrollToBottom() { el.chat.scrollTop = el.chat.scrollHeight; }

  function renderChat(forceScroll) {
    var stick = forceScroll || nearBottom();
    state.stick = stick;  // images load later and grow the chat: keep the bottom in view if it was
    Array.prototype.slice.call(el.chat.children).forEach(function (child) {
      if (child !== el.empty) { el.chat.removeChild(child); }
    });
    var previousAt = 0;
    sortedEntries().forEach(function (entry) {
      if (entry.at - previousAt > TIME_GAP_S) { el.chat.appendChild(timeLabel(entry.at)); }
      previousAt = entry.at;
      var node = renderEntry(entry);
      if (node) { el.chat.appendChild(node); }
    });
    state.pending.forEach(function (p) { el.chat.appendChild(renderPending(p)); });
    if (stick) { scrollToBottom(); }
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function timeLabel(at) {
    var d = new Date(at * 1000);
    var now = new Date();
    var text = pad(d.getHours()) + ":" + pad(d.getMinutes());
    if (d.toDateString() !== now.toDateString()) { text = (d.getMonth() + 1) + "月" + d.getDate() + "日 " + text; }
    var node = document.createElement("div");
    node.className = "time";
    node.textContent = text;
    return node;
  }

  function systemNote(text, extraClass) {
    var node = document.createElement("div");
    node.className = "sys" + (extraClass ? " " + extraClass : "");
    var span = document.createElement("span");
    span.textContent = text;
    node.appendChild(span);
    return node;
  }

  function eventNote(entry) {
    var key = entry.event_key || "";
    switch (entry.event) {
      case "subscribe":
        return "你关注了公众号" + (key.indexOf("qrscene_") === 0 ? "（扫码场景 " + key.slice(8) + "）" : "");
      case "unsubscribe": return "你取消了关注";
      case "SCAN": return "你扫描了公众号二维码（场景 " + key + "）";
      case "CLICK": return "点击菜单「" + (findMenuName(key, "click") || key) + "」";
      case "VIEW": return "打开菜单「" + (findMenuName(key, "view") || key) + "」";
      default: return "事件 " + (entry.event || "") + (key ? " " + key : "");
    }
  }

  function avatar(entry) {
    var node = document.createElement("div");
    node.className = "avatar";
    if (entry.direction === "in") {
      var name = (state.user && state.user.nickname) || "我";
      node.textContent = Array.from(name)[0] || "我";
    } else {
      node.textContent = "号";
    }
    node.setAttribute("aria-hidden", "true");
    return node;
  }

  function row(entry, content) {
    var node = document.createElement("div");
    node.className = "msg " + (entry.direction === "in" ? "in" : "out");
    node.dataset.type = entry.type || "";
    if (entry.via) { node.dataset.via = entry.via; }
    node.appendChild(avatar(entry));
    node.appendChild(content);
    return node;
  }

  function renderEntry(entry) {
    if (entry.type === "event") { return systemNote(eventNote(entry)); }
    if (entry.type === "system") { return systemNote(entry.text || "", "error"); }
    if (entry.type === "template") { return row(entry, templateCard(entry)); }
    if (entry.type === "news" || entry.type === "mpnews") { return row(entry, newsCard(entry)); }
    if ((entry.type === "image" || entry.type === "video") && entry.media_url) {
      return row(entry, imageBubble(entry.media_url));
    }
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    if (entry.type === "text" || entry.text) {
      renderRichText(bubble, entry.text || "");
    } else {
      bubble.textContent = "[" + (entry.type || "消息") + "]";
    }
    if (entry.type === "voice") { bubble.textContent = "[语音]"; }
    return row(entry, bubble);
  }

  function imageBubble(src) {
    var bubble = document.createElement("div");
    bubble.className = "bubble image";
    var img = document.createElement("img");
    img.alt = "图片";
    img.addEventListener("load", function () { if (state.stick) { scrollToBottom(); } });
    img.src = src;
    bubble.appendChild(img);
    return bubble;
  }

  function renderPending(p) {
    var entry = { direction: "in", type: p.type };
    var content;
    if (p.type === "image") {
      content = imageBubble(p.src);
    } else {
      content = document.createElement("div");
      content.className = "bubble";
      content.textContent = p.text;
    }
    content.classList.add("pending");
    return row(entry, content);
  }

  // WeChat renders <a href="...">text</a> in text messages as links, and nothing else as markup.
  var ANCHOR = /<a\s+href\s*=\s*(["'])([^"'<>]*)\1[^<>]*>([^<]*)<\/a>/gi;

  function safeHref(href) {
    return /^https?:\/\/[^\s]+$/i.test(href) || (/^\/[^\/\\]/.test(href) && !/\s/.test(href));
  }

  function renderRichText(container, text) {
    var last = 0;
    var match;
    ANCHOR.lastIndex = 0;
    while ((match = ANCHOR.exec(text)) !== null) {
      autolink(container, text.slice(last, match.index));
      var href = match[2].replace(/&amp;/g, "&");
      if (safeHref(href)) {
        container.appendChild(link(href, match[3]));
      } else {
        container.appendChild(document.createTextNode(match[0]));
      }
      last = ANCHOR.lastIndex;
    }
    autolink(container, text.slice(last));
  }

  // WeChat also makes bare http(s) URLs in a text message tappable; a URL ends at the first
  // character that cannot be part of one (a space, Chinese punctuation) or trailing punctuation.
  var BARE_URL = /https?:\/\/[A-Za-z0-9\-._~:\/?#\[\]@!$&'()*+,;=%]+/g;

  function autolink(container, text) {
    var last = 0;
    var match;
    BARE_URL.lastIndex = 0;
    while ((match = BARE_URL.exec(text)) !== null) {
      var url = match[0].replace(/[.,;:!?'()\]]+$/, "");
      container.appendChild(document.createTextNode(text.slice(last, match.index)));
      container.appendChild(link(url, url));
      last = match.index + url.length;
      BARE_URL.lastIndex = last;
    }
    container.appendChild(document.createTextNode(text.slice(last)));
  }

  function link(href, label) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    a.addEventListener("click", function (event) {
      event.preventDefault();
      openLink(href);
    });
    return a;
  }

  function fieldValue(value) {
    if (value && typeof value === "object") { return value.value == null ? "" : String(value.value); }
    return value == null ? "" : String(value);
  }

  function templateCard(entry) {
    var card = document.createElement("div");
    card.className = "card template";
    var body = document.createElement("div");
    body.className = "card-body";
    var title = document.createElement("p");
    title.className = "card-title";
    title.textContent = entry.title || "模板消息";
    body.appendChild(title);
    var date = document.createElement("div");
    date.className = "card-date";
    var d = new Date(entry.at * 1000);
    date.textContent = (d.getMonth() + 1) + "月" + d.getDate() + "日";
    body.appendChild(date);
    // The template's content with its values filled in ("审核结果：{{thing1.DATA}}" lines), as
    // WeChat shows it; without content, the raw data fields.
    var lines = (entry.text || "").split("\n").filter(function (l) { return l.trim() !== ""; });
    if (lines.length) {
      lines.forEach(function (line) {
        var cut = line.search(/[：:]/);
        body.appendChild(cardRow(cut > 0 ? line.slice(0, cut) : "", cut > 0 ? line.slice(cut + 1) : line));
      });
    } else {
      var data = entry.data || {};
      Object.keys(data).forEach(function (key) {
        var fieldRow = cardRow(key, fieldValue(data[key]));
        var color = data[key] && data[key].color;
        if (typeof color === "string" && /^#[0-9a-fA-F]{3,6}$/.test(color)) { fieldRow.lastChild.style.color = color; }
        body.appendChild(fieldRow);
      });
    }
    card.appendChild(body);
    if (entry.url) {
      var more = document.createElement("a");
      more.className = "card-link";
      more.href = entry.url;
      more.textContent = "详情";
      more.addEventListener("click", function (event) { event.preventDefault(); openLink(entry.url); });
      card.appendChild(more);
    }
    return card;
  }

  function cardRow(key, value) {
    var line = document.createElement("div");
    line.className = "card-row";
    if (key) {
      var k = document.createElement("span");
      k.className = "card-key";
      k.textContent = key;
      line.appendChild(k);
    }
    var v = document.createElement("span");
    v.className = "card-value";
    v.textContent = value;
    line.appendChild(v);
    return line;
  }

  function articleField(article, name) {
    return article[name] || article[name.toLowerCase()] || "";
  }

  function newsCard(entry) {
    var articles = (entry.data && entry.data.articles) || [{
      Title: entry.text, Url: entry.url, PicUrl: entry.media_url, Description: entry.data && entry.data.description
    }];
    var first = articles[0] || {};
    var card = document.createElement("div");
    card.className = "card news";
    var pic = articleField(first, "PicUrl");
    if (pic && safeHref(pic)) {
      var img = document.createElement("img");
      img.className = "card-pic";
      img.alt = "";
      img.src = pic;
      card.appendChild(img);
    }
    var body = document.createElement("div");
    body.className = "card-body";
    var title = document.createElement("p");
    title.className = "card-title";
    title.textContent = articleField(first, "Title") || entry.text || "图文消息";
    body.appendChild(title);
    var description = articleField(first, "Description");
    if (description) {
      var desc = document.createElement("p");
      desc.className = "card-desc";
      desc.textContent = description;
      body.appendChild(desc);
    }
    card.appendChild(body);
    var url = articleField(first, "Url") || entry.url;
    if (url) { card.addEventListener("click", function () { openLink(url); }); }
    return card;
  }

  // --- the WeChat browser -----------------------------------------------------------------------

  function openBrowser(url) {
    el.browserTitle.textContent = "加载中…";
    el.browserExternal.href = url;
    el.frame.src = url;
    el.browser.hidden = false;
  }

  el.frame.addEventListener("load", function () {
    var title = "";
    try { title = el.frame.contentDocument.title; } catch (e) { title = ""; }  // another site: no access
    if (!title) {
      try { title = new URL(el.frame.src, location.href).host; } catch (e) { title = ""; }
    }
    el.browserTitle.textContent = title;
    // Pages in the frame get WeChat's JS bridge (getBrandWCPayRequest → the sandbox pay sheet), as
    // inside WeChat; pages on another origin cannot be reached and use postMessage instead.
    if (window.SandboxPaySheet) {
      try { window.SandboxPaySheet.installBridge(el.frame.contentWindow); } catch (e) { /* other origin */ }
    }
  });
  if (window.SandboxPaySheet) window.SandboxPaySheet.listen();

  el.browserClose.addEventListener("click", function () {
    el.browser.hidden = true;
    el.frame.src = "about:blank";
  });

  function openLink(url) {
    api("POST", "/open", { url: url })
      .then(function (data) { openBrowser(data.open); })
      .catch(function (error) { toast(error.message); });
  }

  // --- actions ----------------------------------------------------------------------------------

  function afterDelivery(data) {
    mergeEntries(data.entries || []);
    if (data.failed) { renderChat(false); }
  }

  function act(button) {
    if (button.type === "click") {
      api("POST", "/click", { key: button.key }).then(afterDelivery).catch(function (e) { toast(e.message); });
    } else if (button.type === "view") {
      api("POST", "/view", { url: button.url, menu_id: state.menu && state.menu.menuid })
        .then(function (data) { afterDelivery(data); openBrowser(data.open); })
        .catch(function (e) { toast(e.message); });
    } else {
      toast("沙箱暂不支持这种菜单：" + (button.type || "未知"));
    }
  }

  function sendText(text) {
    var pending = { key: Math.random(), type: "text", text: text };
    state.pending.push(pending);
    renderChat(true);
    api("POST", "/text", { text: text })
      .then(function (data) {
        state.pending = state.pending.filter(function (p) { return p !== pending; });
        mergeEntries(data.entries || [], true);
        renderChat(true);
      })
      .catch(function (e) {
        state.pending = state.pending.filter(function (p) { return p !== pending; });
        renderChat(false);
        toast(e.message);
      });
  }

  function sendImage(file) {
    var src = URL.createObjectURL(file);
    var pending = { key: Math.random(), type: "image", src: src };
    state.pending.push(pending);
    renderChat(true);
    var form = new FormData();
    form.append("file", file, file.name);
    api("POST", "/image", form)
      .then(function (data) {
        state.pending = state.pending.filter(function (p) { return p !== pending; });
        mergeEntries(data.entries || [], true);
        renderChat(true);
      })
      .catch(function (e) {
        state.pending = state.pending.filter(function (p) { return p !== pending; });
        renderChat(false);
        toast(e.message);
      })
      .then(function () { URL.revokeObjectURL(src); });
  }

  function loadState() {
    return api("GET", "/state").then(applySnapshot);
  }

  el.select.addEventListener("change", function () {
    var openid = el.select.value;
    if (!openid) { return; }
    api("POST", "/users/" + encodeURIComponent(openid) + "/select").then(applySnapshot)
      .catch(function (e) { toast(e.message); });
  });

  el.openidCopy.addEventListener("click", function () {
    var text = el.openidText.textContent;
    var range = document.createRange();
    range.selectNodeContents(el.openidText);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { toast("已复制 openid"); },
        function () { toast("已选中，请按 Ctrl+C 复制"); });
    } else {
      toast("已选中，请按 Ctrl+C 复制");
    }
  });

  el.newToggle.addEventListener("click", function () {
    el.newForm.hidden = !el.newForm.hidden;
    if (!el.newForm.hidden) { el.newNickname.focus(); }
  });

  el.newForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var nickname = el.newNickname.value.trim();
    if (!nickname) { toast("请填写昵称"); return; }
    api("POST", "/users", { nickname: nickname })
      .then(function () { el.newNickname.value = ""; el.newForm.hidden = true; return loadState(); })
      .catch(function (e) { toast(e.message); });
  });

  el.follow.addEventListener("click", function () {
    api("POST", "/follow").then(function (data) {
      state.user.subscribed = true;
      state.menu = data.menu || null;
      markUser(true);
      afterDelivery(data);
    }).catch(function (e) { toast(e.message); });
  });

  el.unfollow.addEventListener("click", function () {
    api("POST", "/unfollow").then(function (data) {
      state.user.subscribed = false;
      markUser(false);
      afterDelivery(data);
    }).catch(function (e) { toast(e.message); });
  });

  function markUser(subscribed) {
    state.users.forEach(function (u) { if (state.user && u.openid === state.user.openid) { u.subscribed = subscribed; } });
    state.mode = "menu";
    renderUsers();
    renderBottom();
  }

  el.toInput.addEventListener("click", function () {
    state.mode = "input";
    renderBottom();
    el.text.focus();
  });

  el.toMenu.addEventListener("click", function () {
    state.mode = "menu";
    renderBottom();
  });

  el.text.addEventListener("input", function () {
    el.send.hidden = el.text.value.trim() === "";
  });

  el.inputBar.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = el.text.value;
    if (!text.trim()) { return; }
    el.text.value = "";
    el.send.hidden = true;
    sendText(text);
  });

  el.image.addEventListener("change", function () {
    var file = el.image.files && el.image.files[0];
    el.image.value = "";
    if (file) { sendImage(file); }
  });

  document.addEventListener("click", function (event) {
    if (!el.subMenu.hidden && !el.subMenu.contains(event.target)) { closeSubMenu(); }
  });

  // --- polling: custom and template messages arrive without a reload ----------------------------

  function poll() {
    if (!state.user || document.hidden) { return Promise.resolve(); }
    var openid = state.user.openid;
    var since = Math.max(0, state.lastAt - 5);  // a little overlap: ids make it harmless
    return api("GET", "/chat?since=" + since + "&openid=" + encodeURIComponent(openid)).then(function (data) {
      if (!state.user || state.user.openid !== openid) { return; }
      mergeEntries(data.entries || []);
      if (!!data.subscribed !== !!state.user.subscribed) {
        state.user.subscribed = !!data.subscribed;
        markUser(state.user.subscribed);
      }
      state.polls += 1;
      if (state.polls % MENU_REFRESH_POLLS === 0) {
        return api("GET", "/menu?openid=" + encodeURIComponent(openid)).then(function (m) {
          if (JSON.stringify(m.menu || null) !== JSON.stringify(state.menu)) {
            state.menu = m.menu || null;
            renderBottom();
          }
        });
      }
    });
  }

  function pollLoop() {
    poll().catch(function () { /* the server restarting: try again next tick */ })
      .then(function () { setTimeout(pollLoop, POLL_MS); });
  }

  applySnapshot(JSON.parse($("initial-state").textContent));
  setTimeout(pollLoop, POLL_MS);
})();
