// ODRL rules in a line of words, for tables and offers (the API's /preview gives the full explanation).

function term(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map(term).join(", ");
  if (typeof value === "object") return term(value["@id"] ?? value["@value"] ?? JSON.stringify(value));
  return String(value).replace(/^https?:\/\/www\.w3\.org\/ns\/odrl\/2\//, "").replace(/^odrl:/, "");
}

function constraintText(c) {
  for (const group of ["and", "or", "xone", "andSequence"]) {
    if (Array.isArray(c[group])) return `(${c[group].map(constraintText).join(` ${group} `)})`;
  }
  return `${term(c.leftOperand)} ${term(c.operator)} ${term(c.rightOperand)}`;
}

function ruleText(rule, verb) {
  const constraints = rule.constraint || [];
  const duties = (rule.duty || []).map((d) => term(d.action));
  return `${verb} ${term(rule.action) || "(any action)"}${constraints.length ? ` if ${constraints.map(constraintText).join(" and ")}` : ""}`
    + `${duties.length ? `; duty: ${duties.join(", ")}` : ""}`;
}

export function describeOffer(offer) {
  const lines = [...(offer.permission || []).map((r) => ruleText(r, "may")),
                 ...(offer.prohibition || []).map((r) => ruleText(r, "may not")),
                 ...(offer.obligation || []).map((r) => ruleText(r, "must"))];
  return lines.length ? lines : ["no rules"];
}
