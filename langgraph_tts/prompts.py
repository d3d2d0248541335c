"""Prompt texts, as named constants. Our own wording; what each must achieve is in the docstrings.

The `*_MARKER` constants are phrases the built-in simulator looks for to recognise what kind
of request it received; keep them inside the prompts if you edit the wording.
"""

from __future__ import annotations

__all__ = [
    "DECOMPOSE_MARKER",
    "DECOMPOSE_SYSTEM_PROMPT",
    "DIFFICULTY_MARKER",
    "DIFFICULTY_SYSTEM_PROMPT",
    "DIFFICULTY_USER_TEMPLATE",
    "POLICY_SYSTEM_PROMPT",
    "PRM_SYSTEM_PROMPT",
    "SELECT_MARKER",
    "SELECT_OUTLINE_SYSTEM_PROMPT",
    "SELECT_OUTLINE_USER_TEMPLATE",
    "SOLVE_SUBPROBLEM_SYSTEM_PROMPT",
    "SOLVE_SUBPROBLEM_USER_TEMPLATE",
    "STEP_DELIMITER",
    "VERIFIER_MARKER",
    "VERIFIER_SYSTEM_PROMPT",
    "VERIFIER_USER_TEMPLATE",
]

STEP_DELIMITER = "\n\n"
"""A reasoning step is the text up to and including a blank line (search-and-learn, DORA)."""

POLICY_SYSTEM_PROMPT = """\
Solve the math problem you are given, accurately and without padding.

If the problem takes two steps or fewer, give a brief solution with little explanation.

Otherwise, work in numbered steps and leave a blank line after each one:

## Step 1: [what this step establishes]
[short reasoning and the computation]

## Step 2: [what this step establishes]
[short reasoning and the computation]

...

Whatever the length, finish with this exact sentence:

Therefore, the final answer is: $\\boxed{answer}$. I hope it is correct.

Here answer is only the final number or expression that answers the problem."""
"""Asks for `## Step k:` blocks separated by blank lines (so `\\n\\n` delimits steps) and a
closing `\\boxed{}` sentence (so answers can be extracted)."""

PRM_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
"""The system message Qwen2.5-Math-PRM was trained with; it is part of the model's input
format, so it is used verbatim."""

VERIFIER_MARKER = "Reply with exactly one word: Yes or No."
VERIFIER_SYSTEM_PROMPT = (
    "You check mathematical reasoning. You are shown a problem and a solution that may be "
    "complete or only partly written. Decide whether every step written so far is correct "
    "and leads towards the right answer. " + VERIFIER_MARKER
)
VERIFIER_USER_TEMPLATE = (
    "Problem:\n{problem}\n\nSolution so far:\n{solution}\n\n"
    "Is every step so far correct? Yes or No?"
)

# --- SCALE (decompose -> assess difficulty -> route -> solve) --------------------------------

DECOMPOSE_MARKER = "Return the outline as a JSON object"
DECOMPOSE_SYSTEM_PROMPT = (
    "You are an experienced mathematics teacher who turns a hard problem into a short, "
    "ordered list of sub-problems that lead to its answer.\n\n"
    "Rules:\n"
    "1. Each sub-problem must be easier than the original and be solvable with the results "
    "of the ones before it.\n"
    "2. Say WHAT each sub-problem must find, not HOW: do not prescribe theorems or methods "
    "unless the problem cannot be stated without them.\n"
    "3. Give each sub-problem one concrete target that moves towards the final answer.\n"
    "4. Do not solve anything and do not state numerical results.\n"
    "5. If you introduce a new variable, point or quantity, name it explicitly.\n"
    "6. The last sub-problem must produce the answer the problem asks for.\n\n"
    + DECOMPOSE_MARKER
    + ' with keys "step1", "step2", ... in order, for example '
    '{"step1": "...", "step2": "..."}. Output the JSON only, nothing before or after it.'
)

SELECT_MARKER = "Answer with the identifier of the best version only"
SELECT_OUTLINE_SYSTEM_PROMPT = (
    "You are an experienced mathematics teacher. You are given several outlines (versions) "
    "that break the same problem into sub-problems. Judge each one on logical soundness, "
    "completeness, clarity and simplicity, and on whether its steps state goals rather than "
    "methods. Pick the version most likely to lead to a correct solution. "
    + SELECT_MARKER
    + ", for example version2, with no comment."
)
SELECT_OUTLINE_USER_TEMPLATE = (
    "Problem:\n{problem}\n\nOutlines:\n{versions}\n\nWhich version is best?"
)

DIFFICULTY_MARKER = "Rate the difficulty of the next sub-problem"
DIFFICULTY_SYSTEM_PROMPT = (
    "You are an experienced mathematics teacher. You see a problem, the work done on it so "
    "far, and the next sub-problem to solve. "
    + DIFFICULTY_MARKER
    + " as a number between 0 and 1. From 0 to 0.5: routine; a student who knows the topic "
    "solves it quickly without help. From 0.5 to 1: hard; even a strong high-school or "
    "university student would need long, careful thought, or might not solve it at all. "
    "Reply with the number only."
)
DIFFICULTY_USER_TEMPLATE = (
    "Problem: {problem}\nWork so far: {context}\nNext sub-problem: {subproblem}"
)

SOLVE_SUBPROBLEM_SYSTEM_PROMPT = "Reason step by step, and put your final answer within \\boxed{}."
"""Used for System-1 and System-2 alike, and for the CoT baseline (SCALE's choice)."""
SOLVE_SUBPROBLEM_USER_TEMPLATE = (
    "Given conditions: {conditions}\nWork so far: {context}\nQuestion: {subproblem}"
)
