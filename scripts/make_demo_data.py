"""Regenerate the bundled demo dataset (src/instructkit/data/demo.jsonl) and its demo benchmark.

The demo gives every transform work to do: exact and near duplicates, non-English records,
fake personal data, empty outputs, refusals, tasks a text model cannot do, a multi-turn
conversation and items leaked from a small benchmark. All personal data here is invented.

    python scripts/make_demo_data.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "instructkit" / "data"

BASE = [
    ("Give three tips for staying healthy.", "", "1. Eat a balanced diet with plenty of fruit and vegetables.\n2. Exercise regularly, at least 30 minutes most days.\n3. Sleep seven to nine hours a night."),
    ("Explain what photosynthesis is in one paragraph.", "", "Photosynthesis is the process by which green plants, algae and some bacteria turn light energy into chemical energy. Using sunlight, they combine carbon dioxide from the air with water from the soil to make glucose, and release oxygen as a by-product."),
    ("Write a Python function that returns the factorial of n.", "", "def factorial(n):\n    if n < 0:\n        raise ValueError(\"n must be non-negative\")\n    result = 1\n    for i in range(2, n + 1):\n        result *= i\n    return result"),
    ("Translate the sentence into French.", "The library opens at nine in the morning.", "La bibliothèque ouvre à neuf heures du matin."),
    ("Summarize the text in one sentence.", "The city council met on Tuesday to discuss the new bicycle lanes. After a long debate, members voted to build ten kilometres of protected lanes over the next two years, paid for by the transport budget.", "The council voted to build ten kilometres of protected bicycle lanes within two years."),
    ("Classify the sentiment of the review as positive, negative or neutral.", "The battery lasts all day and the screen is gorgeous.", "positive"),
    ("What is the capital of Australia?", "", "The capital of Australia is Canberra."),
    ("Rewrite the sentence in the passive voice.", "The chef cooked a delicious meal.", "A delicious meal was cooked by the chef."),
    ("List four renewable sources of energy.", "", "Solar, wind, hydroelectric and geothermal energy."),
    ("Write a SQL query that counts the orders per customer.", "Table orders(id, customer_id, total)", "SELECT customer_id, COUNT(*) AS n_orders\nFROM orders\nGROUP BY customer_id;"),
    ("Explain the difference between a list and a tuple in Python.", "", "A list is mutable: you can add, remove and change its items. A tuple is immutable: once created it cannot change, which makes it hashable and usable as a dictionary key."),
    ("Suggest a name for a bakery that specialises in sourdough.", "", "Wild Rise Bakery"),
    ("Convert 25 degrees Celsius to Fahrenheit.", "", "25 °C is 77 °F, since F = C × 9/5 + 32."),
    ("Write a haiku about autumn leaves.", "", "Red leaves drift and fall\nwhispering to the cold ground\nthe year exhales slow"),
    ("Give an example of a metaphor.", "", "\"Time is a thief\" is a metaphor: it describes time as something that steals moments from us."),
    ("Explain why the sky is blue.", "", "Sunlight is scattered by the molecules of the atmosphere, and shorter blue wavelengths scatter much more than red ones (Rayleigh scattering), so blue light reaches our eyes from every direction of the sky."),
    ("Find the error in the code and fix it.", "for i in range(10)\n    print(i)", "The for statement lacks a colon:\n\nfor i in range(10):\n    print(i)"),
    ("Describe the water cycle in three steps.", "", "1. Evaporation: the sun heats water, which rises as vapour.\n2. Condensation: the vapour cools into clouds.\n3. Precipitation: water falls back as rain or snow."),
    ("Generate a short motivational quote.", "", "Small steps every day add up to big changes."),
    ("What are the three primary colours of light?", "", "Red, green and blue."),
    ("Write a JavaScript function that reverses a string.", "", "function reverse(s) {\n  return s.split('').reverse().join('');\n}"),
    ("Explain what a hash table is.", "", "A hash table stores key-value pairs in an array of buckets. A hash function maps each key to a bucket index, so lookups, inserts and deletes take constant time on average."),
    ("Give two advantages of remote work.", "", "It removes the daily commute and lets people organise their day around their most productive hours."),
    ("Name the largest planet in the solar system.", "", "Jupiter is the largest planet in the solar system."),
    ("Write a regular expression that matches a five-digit ZIP code.", "", "^\\d{5}$"),
    ("Explain the term 'opportunity cost'.", "", "Opportunity cost is the value of the best alternative you give up when you make a choice. If you spend an evening studying, the opportunity cost is whatever else you would have done with that time."),
    ("Create a packing list for a weekend camping trip.", "", "Tent, sleeping bag, sleeping mat, headlamp, stove and fuel, water filter, food, rain jacket, warm layer, first-aid kit."),
    ("What does HTTP status code 404 mean?", "", "404 Not Found: the server could not find the requested resource."),
    ("Rewrite the paragraph to be more concise.", "In my personal opinion, I think that it is very important and essential for all students to read books on a regular and consistent basis.", "Students should read regularly."),
    ("Write a bash command that counts the lines of every Python script in a folder.", "", "wc -l *.py"),
]

NEAR_EDITS = [
    ("Give three tips for staying healthy.", "Give three tips for staying healthy and fit."),
    ("Explain what photosynthesis is in one paragraph.", "Explain what photosynthesis is, in one short paragraph."),
    ("Explain why the sky is blue.", "Explain briefly why the sky is blue."),
    ("Describe the water cycle in three steps.", "Describe the water cycle in 3 steps."),
    ("Explain what a hash table is.", "Explain what a hash table is and how it works."),
]

FOREIGN = [
    ("Donne trois conseils pour rester en bonne santé.", "Mange équilibré, fais du sport et dors suffisamment."),
    ("Explique ce qu'est la photosynthèse.", "La photosynthèse permet aux plantes de transformer la lumière du soleil en énergie chimique."),
    ("Quelle est la capitale du Canada ?", "La capitale du Canada est Ottawa."),
    ("Écris un court poème sur la mer.", "La mer murmure au rivage\nses secrets de sel et de vent."),
    ("Nenne drei Vorteile des Radfahrens.", "Es ist gesund, umweltfreundlich und günstig."),
    ("Erkläre den Unterschied zwischen Wetter und Klima.", "Wetter beschreibt den kurzfristigen Zustand der Atmosphäre, Klima den langjährigen Durchschnitt."),
    ("¿Cuál es el río más largo de Europa?", "El río más largo de Europa es el Volga."),
    ("Escribe una receta sencilla de tortilla de patatas.", "Fríe patatas y cebolla, mézclalas con huevos batidos y cuaja la mezcla en la sartén."),
    ("请解释什么是机器学习。", "机器学习是人工智能的一个分支，让计算机从数据中学习规律而不需要显式编程。"),
    ("给出三个保持健康的建议。", "均衡饮食，经常锻炼，保证充足睡眠。"),
    ("中国的首都是哪里？", "中国的首都是北京。"),
    ("日本の首都はどこですか？", "日本の首都は東京です。"),
    ("Qual è la capitale dell'Italia?", "La capitale dell'Italia è Roma."),
    ("Как приготовить чай?", "Вскипятите воду, залейте заварку и дайте настояться три минуты."),
]

PII = [
    ("Write a short email to reschedule a meeting.", "Hi Daniel,\n\nCould we move our meeting to Thursday at 3 pm? You can reach me at priya.raman@northwind-mail.com or on +1 415 555 2671.\n\nThanks,\nPriya"),
    ("Draft a reply to a customer asking for a refund.", "Dear Mr. Okafor,\n\nWe have refunded the amount to the card ending 4111 1111 1111 1111. For questions write to support.desk@bluebirdshop.net.\n\nBest regards"),
    ("Fill in the contact form example.", "Name: Lena Vogt\nEmail: lena.vogt@posteo-demo.de\nPhone: (212) 555-0198\nIP address: 203.0.113.42"),
    ("Summarize the support ticket.", "Customer Marco Bianchi (marco.bianchi@fastmail-demo.it, SSN 078-05-1120) reports that login fails from 198.51.100.7."),
    ("Write a bank transfer note.", "Please transfer 250 EUR to IBAN DE89 3704 0044 0532 0130 00 by Friday. Questions: accounts@fabrikam-demo.com"),
    ("Create a signature block for an email.", "Tomás Herrera | Sales Lead\ntomas.herrera@contoso-demo.com | +44 20 7946 0958"),
]

REFUSALS = [
    ("Tell me who will win the next election.", "As an AI language model, I cannot predict the future or the outcome of elections."),
    ("What is your favourite food?", "I'm sorry, but as an AI I do not have personal opinions or a sense of taste."),
    ("Write a rude joke about my neighbour.", "I'm sorry, but I cannot fulfill this request."),
]

BLACKLISTED = [
    ("Draw a picture of a cat sitting on a chair.", "I would draw a grey cat curled up on a wooden chair."),
    ("Plot the function y = x^2 between -3 and 3.", "The plot is a parabola with its minimum at the origin."),
    ("Open the attached file and summarize it.", "The file discusses quarterly sales."),
    ("Go to the website and tell me the price.", "The price is 20 dollars."),
]

EMPTY = [
    ("Name a famous painting by Vermeer.", ""),
    ("Give a synonym for 'happy'.", "   "),
]

BENCHMARK = [
    ("Maya has 12 apples. She gives 3 apples to each of her 2 friends and then buys 5 more apples at the market. How many apples does Maya have now?", "Maya gives away 3 * 2 = 6 apples, so she has 12 - 6 = 6 left. After buying 5 more she has 6 + 5 = 11 apples. #### 11"),
    ("A train travels 60 kilometres per hour for 2 hours and then 80 kilometres per hour for 3 hours. How many kilometres does the train travel in total?", "It travels 60 * 2 = 120 km and then 80 * 3 = 240 km, so 120 + 240 = 360 km in total. #### 360"),
    ("Tom reads 15 pages of his book every weekday and 25 pages on each day of the weekend. How many pages does Tom read in one full week?", "On weekdays he reads 15 * 5 = 75 pages and at the weekend 25 * 2 = 50 pages, so 75 + 50 = 125 pages. #### 125"),
    ("A bakery sells muffins for 3 dollars each and cookies for 1 dollar each. On Monday it sold 40 muffins and 90 cookies. How much money did the bakery make on Monday?", "Muffins bring 40 * 3 = 120 dollars and cookies 90 * 1 = 90 dollars, so 120 + 90 = 210 dollars. #### 210"),
    ("There are 24 students in a class. One third of them walk to school, one quarter ride a bike and the rest take the bus. How many students take the bus?", "24 / 3 = 8 walk and 24 / 4 = 6 ride a bike, so 24 - 8 - 6 = 10 take the bus. #### 10"),
    ("Sara saves 7 dollars every week. After how many weeks will she have saved enough to buy a game that costs 56 dollars?", "56 / 7 = 8, so Sara needs 8 weeks. #### 8"),
]


def main() -> None:
    rng = random.Random(7)
    records: list[dict] = []

    def add(instruction: str, inp: str, output: str, **extra: object) -> None:
        records.append({"instruction": instruction, "input": inp, "output": output, **extra})

    for inst, inp, out in BASE:
        add(inst, inp, out, category="general")
    # exact duplicates, some with changed whitespace/case that normalize + exact dedup catch
    for inst, inp, out in rng.sample(BASE, 8):
        add(inst, inp, out, category="general")
    for inst, inp, out in rng.sample(BASE, 4):
        add(inst.upper(), inp, out + "  ", category="general")
    # near duplicates: a reworded instruction with the same answer
    base_by_inst = {b[0]: b for b in BASE}
    for old, new in NEAR_EDITS:
        _, inp, out = base_by_inst[old]
        add(new, inp, out, category="general")
    for inst, out in FOREIGN:
        add(inst, "", out, category="foreign")
    for inst, out in PII:
        add(inst, "", out, category="pii")
    for inst, out in REFUSALS:
        add(inst, "", out, category="refusal")
    for inst, out in BLACKLISTED:
        add(inst, "", out, category="blacklisted")
    for inst, out in EMPTY:
        add(inst, "", out, category="empty")
    # benchmark items leaked into training data, verbatim and with case/whitespace changes
    for k, (q, a) in enumerate(BENCHMARK[:4]):
        add(q if k % 2 == 0 else "  " + q.lower(), "", a, category="leaked")
    # templated arithmetic to reach a realistic size; the numbers vary, so these are not duplicates
    for _ in range(200):
        a, b = rng.randint(2, 999), rng.randint(2, 999)
        op, sym, val = rng.choice([("sum", "+", a + b), ("difference", "-", a - b), ("product", "*", a * b)])
        add(f"Compute the {op} of {a} and {b}.", "", f"{a} {sym} {b} = {val}", category="arithmetic")
    rng.shuffle(records)
    for i, rec in enumerate(records):
        rec["id"] = f"demo-{i:04d}"
    # a conversation is another input format, and a file holds one format: it gets its own file
    chat = [{
        "id": "chat-0000",
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "What is the boiling point of water at sea level?"},
            {"role": "assistant", "content": "100 °C (212 °F)."},
            {"role": "user", "content": "And on top of Mount Everest?"},
            {"role": "assistant", "content": "About 70 °C, because the air pressure is much lower."},
        ],
    }]
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "demo.jsonl", "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    with open(OUT / "demo_chat.jsonl", "w", encoding="utf-8") as f:
        for rec in chat:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    with open(OUT / "demo_benchmark.jsonl", "w", encoding="utf-8") as f:
        for k, (q, a) in enumerate(BENCHMARK):
            f.write(json.dumps({"id": f"demo-bench-{k}", "question": q, "answer": a}) + "\n")
    print(f"{len(records)} demo records, {len(chat)} conversation, {len(BENCHMARK)} benchmark items -> {OUT}")


if __name__ == "__main__":
    main()
