// Conditional display (FHIR enableWhen) in the browser; the server applies the same rules when saving.
(function () {
  "use strict";
  function values(form, linkId) {
    var found = [];
    form.querySelectorAll('[name="q-' + CSS.escape(linkId) + '"]').forEach(function (input) {
      if ((input.type === "radio" || input.type === "checkbox") && !input.checked) return;
      if (input.value !== "") found.push(input.value);
    });
    return found;
  }
  function expected(condition) {
    for (var key in condition) {
      if (key.indexOf("answer") === 0) {
        var value = condition[key];
        return value && typeof value === "object" ? String(value.code) : String(value);
      }
    }
    return "";
  }
  function compare(left, right, operator) {
    var a = parseFloat(left), b = parseFloat(right);
    var numbers = !isNaN(a) && !isNaN(b) && String(a) !== "NaN";
    var x = numbers ? a : left, y = numbers ? b : right;
    switch (operator) {
      case "=": return x === y;
      case "!=": return x !== y;
      case ">": return x > y;
      case "<": return x < y;
      case ">=": return x >= y;
      case "<=": return x <= y;
    }
    return false;
  }
  function holds(form, condition) {
    var given = values(form, condition.question);
    var wanted = expected(condition);
    if (condition.operator === "exists") return (given.length > 0) === (wanted === "true");
    if (!given.length) return false;
    if (condition.operator === "!=") return given.every(function (v) { return compare(v, wanted, "!="); });
    return given.some(function (v) { return compare(v, wanted, condition.operator); });
  }
  function refresh(form) {
    form.querySelectorAll("[data-enable-when]").forEach(function (element) {
      var rule = JSON.parse(element.dataset.enableWhen);
      var results = rule.conditions.map(function (c) { return holds(form, c); });
      var shown = rule.behavior === "any" ? results.some(Boolean) : results.every(Boolean);
      // The hidden attribute loses to the console's display rules for fields; an inline style does not.
      element.hidden = !shown;
      element.style.display = shown ? "" : "none";
    });
  }
  document.querySelectorAll("[data-questionnaire-form]").forEach(function (form) {
    form.addEventListener("input", function () { refresh(form); });
    form.addEventListener("change", function () { refresh(form); });
    refresh(form);
    form.dataset.ready = "true";
  });
})();
