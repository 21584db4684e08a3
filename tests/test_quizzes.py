"""Every chapter of the book ends with a short multiple-choice quiz.

The quiz is one Markdown cell that starts with ``## Quiz``, after the chapter's last code cell or just before its
References. Each question is a numbered paragraph (``**1.** ...``), four options ``- A. ...`` to ``- D. ...``, and one
hidden answer::

    <details><summary>Answer</summary>

    **B.** Why B is right, and why the tempting option is wrong.

    </details>

The blank lines inside ``<details>`` matter: without them Jupyter and the HTML book show the Markdown of the answer
as raw text. The tests parse the notebooks only (nothing is executed), so they take a second.
"""

import re

import nbformat
import pytest
from icdl.env import repo_root
from test_hygiene import toc_files

ROOT = repo_root()
QUIZ_HEADING = "## Quiz"
LETTERS = "ABCD"
QUESTION = re.compile(r"^\*\*(\d+)\.\*\*\s+\S", re.M)
OPTION = re.compile(r"^- ([A-Z])\. +(\S.*)$", re.M)
DETAILS = re.compile(r"<details>(.*?)</details>", re.S)
SUMMARY = "<summary>Answer</summary>"
ANSWER_LETTER = re.compile(r"\*\*([A-Z])\.\*\*\s+\S")


def toc_chapters():
    """The chapter notebooks listed in _toc.yml (paths under chapters/), in the order of the book."""
    return [ROOT / f"{f}.ipynb" for f in toc_files() if f.startswith("chapters/")]


def parse_quiz(text):
    """The questions of a quiz cell: [{"number", "text", "options": [(letter, text)], "answers": [inner text]}]."""
    starts = list(QUESTION.finditer(text))
    questions = []
    for match, following in zip(starts, [*starts[1:], None]):
        chunk = text[match.start():following.start() if following else len(text)]
        questions.append({
            "number": int(match.group(1)),
            "text": chunk.splitlines()[0],
            "options": OPTION.findall(chunk),
            "answers": DETAILS.findall(chunk),
        })
    return questions


def quiz_problems(text, min_questions=3, max_questions=5):
    """What is wrong with a quiz cell's Markdown, one message per fault (an empty list: nothing)."""
    if not text.startswith(QUIZ_HEADING + "\n"):
        return [f"the quiz cell must start with a line {QUIZ_HEADING!r}"]
    questions = parse_quiz(text)
    problems = []
    if not min_questions <= len(questions) <= max_questions:
        problems.append(f"{len(questions)} questions; a quiz has {min_questions} to {max_questions}")
    numbers = [q["number"] for q in questions]
    if numbers != list(range(1, len(questions) + 1)):
        problems.append(f"questions are numbered {numbers}, not 1, 2, 3, ...")
    for q in questions:
        name = f"question {q['number']}"
        letters = "".join(letter for letter, _ in q["options"])
        if letters != LETTERS:
            problems.append(f"{name}: options {letters or 'none'}, expected A, B, C and D in that order")
        if len(q["answers"]) != 1:
            problems.append(f"{name}: {len(q['answers'])} <details> answers, expected exactly one")
            continue
        inner = q["answers"][0]
        if not inner.startswith(SUMMARY):
            problems.append(f"{name}: the <details> block must start with {SUMMARY}")
            continue
        body = inner[len(SUMMARY):]
        if not body.startswith("\n\n") or not body.endswith("\n\n"):
            problems.append(f"{name}: leave a blank line after {SUMMARY} and before </details>, or the answer's "
                            "Markdown is shown as raw text")
        found = ANSWER_LETTER.match(body.strip())
        if not found:
            problems.append(f"{name}: the answer must start with its letter, like '**B.** because ...'")
        elif found.group(1) not in letters:
            problems.append(f"{name}: the answer {found.group(1)} is not one of the options {letters}")
    return problems


def answer_letters(text):
    return [ANSWER_LETTER.match(q["answers"][0][len(SUMMARY):].strip()).group(1) for q in parse_quiz(text)]


def quiz_cells(nb):
    """Indices of the Markdown cells that hold a '## Quiz' heading line."""
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "markdown" and QUIZ_HEADING in c.source.splitlines()]


CHAPTERS = toc_chapters()
IDS = [p.relative_to(ROOT).as_posix() for p in CHAPTERS]


def test_the_toc_lists_chapters():
    assert len(CHAPTERS) >= 12 and all(p.is_file() for p in CHAPTERS), IDS


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_chapter_has_one_well_formed_quiz(path):
    nb = nbformat.read(path, as_version=4)
    found = quiz_cells(nb)
    assert len(found) == 1, f"expected exactly one Markdown cell with {QUIZ_HEADING!r}, found cells {found}"
    index = found[0]
    text = nb.cells[index].source
    assert not quiz_problems(text), quiz_problems(text)
    last_code = max(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    before_references = index + 1 < len(nb.cells) and nb.cells[index + 1].source.startswith("## References")
    assert index > last_code or before_references, (
        f"the quiz (cell {index}) must come after the last code cell ({last_code}) or just before References")
    letters = answer_letters(text)
    assert len(set(letters)) > 1, f"every answer is {letters[0]}: vary the position of the right option"


# --------------------------------------------------------------------------
# The parser must catch a broken quiz: planted faults on small strings
# --------------------------------------------------------------------------
def question(number=1, options="ABCD", answer="**B.** Because.", details=True, spacing="\n\n"):
    lines = [f"**{number}.** Which one?", ""] + [f"- {letter}. option {letter}" for letter in options] + [""]
    if details:
        lines.append(f"<details><summary>Answer</summary>{spacing}{answer}{spacing}</details>")
    return "\n".join(lines) + "\n"


def quiz(*questions):
    return QUIZ_HEADING + "\n\nIntro.\n\n" + "\n".join(questions)


GOOD = quiz(question(1), question(2, answer="**D.** Because."), question(3, answer="**A.** Because."))


def test_a_good_quiz_passes():
    assert quiz_problems(GOOD) == []
    assert [q["number"] for q in parse_quiz(GOOD)] == [1, 2, 3]
    assert answer_letters(GOOD) == ["B", "D", "A"]


@pytest.mark.parametrize("broken, message", [
    (quiz(question(1), question(2, details=False), question(3)), "question 2: 0 <details> answers"),
    (quiz(question(1), question(2), question(3, answer="**E.** Because.")), "question 3: the answer E is not one"),
    (quiz(question(1, options="ABC", answer="**D.** Because."), question(2), question(3)),
     "question 1: options ABC, expected A, B, C and D"),
    (quiz(question(1, options="ABC", answer="**D.** Because."), question(2), question(3)),
     "question 1: the answer D is not one of the options ABC"),
    (quiz(question(1), question(2, answer="Because B is right."), question(3)), "must start with its letter"),
    (quiz(question(1), question(2)), "2 questions; a quiz has 3 to 5"),
    (quiz(question(1), question(2), question(4)), "numbered [1, 2, 4]"),
    (quiz(question(1), question(2, spacing="\n"), question(3)), "leave a blank line"),
    (quiz(question(1), question(2) + "<details><summary>Answer</summary>\n\n**A.** Also.\n\n</details>\n",
          question(3)), "question 2: 2 <details> answers"),
    ("# Quiz\n\n" + question(1), "must start with a line '## Quiz'"),
])
def test_planted_faults_are_caught(broken, message):
    problems = quiz_problems(broken)
    assert any(message in p for p in problems), problems


def test_a_chapter_with_two_quizzes_or_none_fails(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_markdown_cell(GOOD), nbformat.v4.new_markdown_cell(GOOD)]
    path = tmp_path / "two.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(AssertionError, match="exactly one"):
        test_chapter_has_one_well_formed_quiz(path)
    nb.cells = nb.cells[:2]
    nbformat.write(nb, path)
    with pytest.raises(AssertionError, match="exactly one"):
        test_chapter_has_one_well_formed_quiz(path)


def test_a_quiz_in_the_middle_of_a_chapter_fails(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_markdown_cell(GOOD),
                nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("## References\n\n- A paper.")]
    path = tmp_path / "middle.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(AssertionError, match="after the last code cell"):
        test_chapter_has_one_well_formed_quiz(path)
