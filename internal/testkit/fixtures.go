package testkit

// HeroExperiment is the experiment of SPEC.md's rule file as one rule in
// YAML's flow style, to write as an item of a page's rules: list at any
// indentation ("      - " + HeroExperiment): the home page's heading,
// 10 % held out, variants a ("Run further") and b ("Run faster") at 50
// each. A test that needs an experiment, and not a particular one, takes
// this one.
const HeroExperiment = `{ id: hero-copy-test, select: "#hero h1", experiment: { holdout: 10, variants: { a: { weight: 50, text: "Run further" }, b: { weight: 50, text: "Run faster" } } } }`
