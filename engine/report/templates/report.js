(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var slider = document.getElementById("scrubber");
  var label = document.getElementById("step-label");
  var cursor = document.getElementById("cursor");
  var veil = document.getElementById("veil");
  var VEIL_GAP = Number(veil.getAttribute("data-gap"));
  var faders = Array.prototype.slice.call(document.querySelectorAll("[data-occurred]"));
  var severity = { high: "!!!", medium: "!!", low: "!" };
  var tooltip = document.getElementById("details");
  var clock = "occurred";
  var index = data.clocks.occurred.length - 1;

  function byId(id) { return document.getElementById(id); }

  function setText(id, value) {
    var element = byId(id);
    element.textContent = value || "";
    return element;
  }

  function setList(id, values) {
    var list = byId(id);
    list.textContent = "";
    (values.length ? values : [null]).forEach(function (value) {
      var item = document.createElement("li");
      if (value === null) {
        item.className = "none";
        item.textContent = list.getAttribute("data-empty");
      } else if (typeof value === "string") {
        item.textContent = value;
      } else {
        item.className = "sev-" + value.severity;
        item.textContent = (value.number ? "[" + value.number + "] " : "") +
          severity[value.severity] + " " + value.sentence;
      }
      list.appendChild(item);
    });
  }

  function show(next) {
    var steps = data.clocks[clock];
    index = Math.max(0, Math.min(steps.length - 1, next));
    var step = steps[index];
    var state = step.state;
    slider.max = String(steps.length - 1);
    slider.value = String(index);
    label.textContent = "Step " + (index + 1) + " of " + steps.length + ": " + step.when;
    slider.setAttribute("aria-valuetext", label.textContent);
    setText("st-when", step.when);
    setText("st-event", step.event);
    setText("st-absent", step.absent).hidden = !step.absent;
    setText("st-unknown", step.unknown + " event(s) that had happened by then were not known yet.").hidden = !step.unknown;
    byId("st-facts").hidden = !state;
    setText("st-stage", state ? state.stage : "");
    setText("st-status", state ? state.status : "");
    setText("st-next", state ? state.next_step || "none" : "");
    setList("st-owed", state ? state.obligations : []);
    setList("st-promises", state ? state.promises : []);
    setList("st-engaged", state ? state.engaged : []);
    setList("st-findings", state ? state.findings : []);
    setList("st-changes", step.changes);
    setList("st-notes", step.notes);
    faders.forEach(function (element) {
      element.classList.toggle("later", Number(element.getAttribute("data-" + clock)) > step.t);
    });
    cursor.setAttribute("transform", "translate(" + step.x + " 0)");
    veil.setAttribute("x", String(step.x + VEIL_GAP));
    veil.setAttribute("width", String(Math.max(0, Number(veil.getAttribute("data-right")) - step.x - VEIL_GAP)));
    Array.prototype.forEach.call(document.querySelectorAll(".current"), function (element) {
      element.classList.remove("current");
    });
    if (step.mark && byId(step.mark)) {
      byId(step.mark).classList.add("current");
    }
  }

  function showDetails(element) {
    var found = data.marks[element.getAttribute("data-mark")];
    if (!found) { return; }
    setText("details-label", found.label);
    setList("details-lines", found.details);
    tooltip.hidden = false;
    var box = element.getBoundingClientRect();
    var width = tooltip.offsetWidth;
    var height = tooltip.offsetHeight;
    var left = Math.max(4, Math.min(box.left, window.innerWidth - width - 4));
    var top = box.bottom + 6 + height > window.innerHeight ? box.top - height - 6 : box.bottom + 6;
    tooltip.style.left = left + "px";
    tooltip.style.top = Math.max(4, top) + "px";
    clearEvidence();
    (element.getAttribute("data-evidence") || "").split(" ").forEach(function (id) {
      if (id && byId(id)) { byId(id).classList.add("cited"); }
    });
  }

  function clearEvidence() {
    Array.prototype.forEach.call(document.querySelectorAll(".cited"), function (item) {
      item.classList.remove("cited");
    });
  }

  function markOf(event) {
    return event.target.closest ? event.target.closest("[data-mark]") : null;
  }

  function onEnter(event) {
    var element = markOf(event);
    if (element) { showDetails(element); }
  }

  function onLeave(event) {
    var element = markOf(event);
    var next = event.relatedTarget && event.relatedTarget.closest ? event.relatedTarget.closest("[data-mark]") : null;
    if (element && next !== element) {
      tooltip.hidden = true;
      clearEvidence();
    }
  }

  slider.addEventListener("input", function () { show(Number(slider.value)); });
  Array.prototype.forEach.call(document.querySelectorAll("[data-step]"), function (button) {
    button.addEventListener("click", function () {
      var how = button.getAttribute("data-step");
      var last = data.clocks[clock].length - 1;
      show(how === "first" ? 0 : how === "last" ? last : how === "back" ? index - 1 : index + 1);
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("input[name=clock]"), function (radio) {
    radio.addEventListener("change", function () {
      // Keep the replay near the same moment on the other clock.
      var at = data.clocks[clock][index].t;
      clock = radio.value;
      var steps = data.clocks[clock];
      var next = 0;
      steps.forEach(function (step, i) { if (step.t <= at) { next = i; } });
      show(next);
    });
  });
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target === slider || (target.tagName === "INPUT" && target.type === "radio")) { return; }
    var moves = { ArrowLeft: index - 1, ArrowRight: index + 1, Home: 0, End: data.clocks[clock].length - 1 };
    if (event.key === "Escape") {
      tooltip.hidden = true;
      return;
    }
    if (event.key in moves && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      show(moves[event.key]);
    }
  });
  document.addEventListener("focusin", onEnter);
  document.addEventListener("mouseover", onEnter);
  document.addEventListener("focusout", onLeave);
  document.addEventListener("mouseout", onLeave);
  Array.prototype.forEach.call(document.querySelectorAll("[data-focus]"), function (link) {
    link.addEventListener("click", function (event) {
      var target = byId(link.getAttribute("data-focus"));
      if (target) {
        event.preventDefault();
        target.focus();
        showDetails(target);
      }
    });
  });
  show(index);
}());
