from helpers.models.task import (
    Example, arithmetic_examples, faq_examples, held_out_examples, is_correct, normalize_answer, training_examples,
)


def test_held_out_questions_are_never_trained_on():
    trained = {e.question for e in training_examples()}
    held_out = held_out_examples(n=10_000)
    assert held_out and not trained & {e.question for e in held_out}


def test_answers_are_the_arithmetic_results():
    for example in arithmetic_examples(held_out=False)[:500]:
        a, op, b = example.question.removeprefix("What is ").removesuffix("?").split()
        assert int(example.answer) == (int(a) + int(b) if op == "+" else int(a) - int(b))
        assert int(example.answer) >= 0


def test_held_out_sample_is_fixed_for_a_seed():
    assert held_out_examples(50, seed=3) == held_out_examples(50, seed=3)
    assert held_out_examples(50, seed=3) != held_out_examples(50, seed=4)


def test_prompt_format_and_exact_match():
    example = Example("What is 2 + 3?", "5", "add")
    assert example.prompt == "Q: What is 2 + 3?\nA:"
    assert example.text == "Q: What is 2 + 3?\nA: 5"
    assert is_correct(example, " 5\nQ: What is")
    assert not is_correct(example, " 55")
    assert normalize_answer("  the API gateway \n more") == "the API gateway"


def test_faq_tells_the_parasol_story():
    answers = dict((e.question, e.answer) for e in faq_examples())
    assert answers["How many employees does Parasol have?"] == "19,000"
    assert answers["How many GPUs were idle?"] == "7"
