// The reading room's only script: keyboard help. Every page works without it.
"use strict";
document.addEventListener("keydown", function (event) {
  // "/" puts the cursor in the search box (unless one is typing somewhere already)
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  var target = event.target;
  if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
  var box = document.getElementById("q");
  event.preventDefault();
  if (box) {
    box.focus();
    box.select();
  } else {
    window.location.href = "/";
  }
});
