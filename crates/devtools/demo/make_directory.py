#!/usr/bin/env python3
"""Writes sample-directory.json: a made-up directory of community services in the Open Referral
UK (HSDS 3.0) shape, for the demo and the tests. Deterministic: run it again and the file is
the same. Every service and organisation here is invented for Casebook; the towns and postcode
districts are real (Mendip, Somerset, one of the seed services) so area search looks real.

    python3 crates/devtools/demo/make_directory.py > crates/devtools/demo/sample-directory.json
"""
import json
import random
import uuid

NS = uuid.UUID("6f1c2d4e-8a7b-4c3d-9e0f-112233445566")
NEED_TAXONOMY = "casebook-need-domains"
CATEGORY_TAXONOMY = "casebook-sample-categories"

NEEDS = {
    "mental_wellbeing": "mental wellbeing",
    "loneliness_isolation": "loneliness or isolation",
    "money_benefits_debt": "money, benefits or debt",
    "housing": "housing",
    "employment": "employment",
    "physical_activity": "physical activity",
    "long_term_condition": "long-term condition",
    "carer_support": "carer support",
    "bereavement": "bereavement",
    "substance_use": "substance use",
    "other": "other",
}

TOWNS = [
    ("Frome", "BA11", ["Cheap Street", "Bath Street", "Catherine Hill", "Portway"]),
    ("Shepton Mallet", "BA4", ["High Street", "Town Street", "Commercial Road", "Paul Street"]),
    ("Wells", "BA5", ["Market Place", "Chamberlain Street", "Priory Road", "Tor Street"]),
    ("Glastonbury", "BA6", ["Magdalene Street", "Benedict Street", "Northload Street", "Chilkwell Street"]),
    ("Street", "BA16", ["High Street", "Leigh Road", "Vestry Road", "Somerton Road"]),
    ("Coleford", "BA3", ["High Street", "Church Street", "Anchor Road"]),
    ("Evercreech", "BA4", ["Church Lane", "Queens Road", "Leighton Lane"]),
]
# Villages have fewer services than towns.
VILLAGES = {"Coleford", "Evercreech"}

VENUES = ["Community Centre", "Library", "Methodist Hall", "Town Hall", "Health Centre",
          "Youth and Community Hub", "Scout Hut", "Family Centre"]

# (name, needs, categories, description, organisation kind, cost, min age, day, hours)
TEMPLATES = [
    ("Talking Café", ["mental_wellbeing", "loneliness_isolation"], ["Peer support", "Drop-in"],
     "A relaxed weekly café where anyone feeling low, anxious or stressed can talk over a cup of tea with trained volunteers. No referral or appointment needed.", "mind", None, 18, "WE", ("10:00", "12:00")),
    ("Mindfulness for Beginners", ["mental_wellbeing"], ["Course", "Mindfulness"],
     "An eight-week course in mindfulness practice for managing stress, low mood and worry, run by an accredited teacher in small groups.", "college", 20, 18, "TU", ("18:30", "20:00")),
    ("Recovery and Wellbeing College", ["mental_wellbeing", "long_term_condition"], ["Course", "Education"],
     "Free short courses co-produced with people with lived experience: understanding anxiety, sleep, confidence building and living well with a long-term condition.", "college", None, 18, "TH", ("13:00", "15:30")),
    ("Art for Wellbeing", ["mental_wellbeing", "loneliness_isolation"], ["Arts and crafts", "Creative"],
     "Friendly art sessions for adults who want to try painting, printmaking and collage in a supportive group. Materials provided.", "arts", 3, 18, "FR", ("14:00", "16:00")),
    ("Anxiety Peer Support Group", ["mental_wellbeing"], ["Peer support", "Support group"],
     "A fortnightly group run by and for people living with anxiety and panic, sharing what helps.", "mind", None, 18, "MO", ("19:00", "20:30")),
    ("Men's Shed", ["loneliness_isolation", "mental_wellbeing"], ["Practical skills", "Men's health"],
     "A workshop where men (and anyone who likes making and mending) meet to work on woodwork and repairs, share skills and have a chat.", "shed", 2, 18, "TU", ("09:30", "13:00")),
    ("Friendship Lunch Club", ["loneliness_isolation"], ["Lunch club", "Older people"],
     "A two-course lunch and good company every week for older people living alone. Transport can be arranged.", "age", 6, 55, "TH", ("12:00", "14:00")),
    ("Telephone Befriending", ["loneliness_isolation"], ["Befriending", "Telephone support"],
     "A weekly phone call from the same trained volunteer for people who are isolated at home or find it hard to get out.", "age", None, 18, "MO", ("10:00", "16:00")),
    ("Community Choir", ["loneliness_isolation", "mental_wellbeing"], ["Singing", "Music"],
     "A no-auditions community choir singing pop, folk and gospel. No experience or reading music needed.", "arts", 4, 16, "WE", ("19:30", "21:00")),
    ("Knit and Natter", ["loneliness_isolation"], ["Arts and crafts", "Drop-in"],
     "Bring your knitting, crochet or sewing, or learn from scratch, at a friendly weekly drop-in with tea and cake.", "library", None, None, "FR", ("10:00", "12:00")),
    ("Money Advice Drop-in", ["money_benefits_debt"], ["Advice", "Debt"],
     "Free, confidential advice on debts, budgeting, and dealing with creditors and bailiffs, with accredited advisers.", "advice", None, 18, "MO", ("10:00", "15:00")),
    ("Benefits Check Clinic", ["money_benefits_debt"], ["Advice", "Welfare benefits"],
     "A one-to-one appointment to check which benefits you are entitled to and get help with forms, including PIP and Universal Credit.", "advice", None, 16, "WE", ("09:30", "16:30")),
    ("Community Food Bank", ["money_benefits_debt"], ["Food", "Emergency support"],
     "Emergency food parcels for people in crisis, with a voucher from a link worker or another referrer. Advice on the spot from partner agencies.", "foodbank", None, None, "TU", ("11:00", "14:00")),
    ("Energy Bills Advice", ["money_benefits_debt", "housing"], ["Advice", "Energy"],
     "Help with energy debt, switching, warm home grants and understanding your bills.", "energy", None, 18, "TH", ("10:00", "13:00")),
    ("Housing Options Advice", ["housing"], ["Advice", "Homelessness prevention"],
     "Advice for people at risk of losing their home, in housing need, or living in poor conditions.", "council", None, 16, "MO", ("09:00", "17:00")),
    ("Tenancy Support Service", ["housing", "money_benefits_debt"], ["Tenancy support", "Practical help"],
     "Practical one-to-one support to set up and keep a tenancy: bills, repairs, neighbours and budgeting.", "housing", None, 18, "TU", ("09:00", "17:00")),
    ("Handyperson Service", ["housing", "long_term_condition"], ["Home repairs", "Older people"],
     "Small repairs and adaptations (grab rails, key safes, lighting) for older and disabled people, to keep them safe at home.", "age", 10, 60, "WE", ("08:30", "16:30")),
    ("Job Club", ["employment"], ["Employment support", "Drop-in"],
     "Help with CVs, applications, interview practice and finding local vacancies, with computers available.", "work", None, 16, "TH", ("10:00", "12:30")),
    ("Volunteering Hub", ["employment", "loneliness_isolation"], ["Volunteering"],
     "Find a volunteering role that suits you, from conservation to cafés, with support to get started.", "cvs", None, 16, "FR", ("10:00", "14:00")),
    ("Back to Work Coaching", ["employment", "mental_wellbeing"], ["Employment support", "Coaching"],
     "One-to-one coaching for people out of work because of health conditions, at their own pace.", "work", None, 18, "MO", ("09:30", "16:30")),
    ("Digital Skills Drop-in", ["other", "employment"], ["Digital inclusion", "Drop-in"],
     "Help using phones, tablets and computers: email, video calls, online forms, GP apps and staying safe online.", "library", None, None, "WE", ("14:00", "16:00")),
    ("Walking for Health", ["physical_activity", "loneliness_isolation"], ["Walking", "Outdoors"],
     "Short, friendly led walks of 30 to 90 minutes on easy paths, for people who want to become more active.", "leisure", None, None, "TU", ("10:30", "12:00")),
    ("Chair-based Exercise", ["physical_activity", "long_term_condition"], ["Exercise", "Older people"],
     "Gentle seated exercise to improve strength, balance and mobility, suitable for people with limited mobility.", "leisure", 3, 50, "TH", ("11:00", "12:00")),
    ("Community Allotment", ["physical_activity", "mental_wellbeing", "loneliness_isolation"], ["Gardening", "Outdoors"],
     "A shared allotment where people grow vegetables together, with tools and guidance. Come when you can.", "green", None, None, "SA", ("10:00", "13:00")),
    ("Beginners' Swimming", ["physical_activity"], ["Swimming", "Exercise"],
     "Quiet adult-only swimming lessons for beginners and nervous swimmers, in small groups.", "leisure", 5, 18, "FR", ("18:00", "19:00")),
    ("Tai Chi for Balance", ["physical_activity", "long_term_condition"], ["Exercise", "Falls prevention"],
     "A twelve-week tai chi course shown to improve balance and reduce falls in older adults.", "leisure", 4, 55, "MO", ("14:00", "15:00")),
    ("Green Gym", ["physical_activity", "mental_wellbeing"], ["Conservation", "Outdoors"],
     "Practical conservation work outdoors (hedge laying, path clearing, tree planting) in a friendly team.", "green", None, 16, "WE", ("10:00", "14:00")),
    ("Diabetes Support Group", ["long_term_condition"], ["Support group", "Diabetes"],
     "Monthly meetings for people living with diabetes and their families: talks, sharing tips, healthy eating.", "health", None, 18, "TH", ("19:00", "20:30")),
    ("Breathe Easy Group", ["long_term_condition", "loneliness_isolation"], ["Support group", "Lung health"],
     "A support group for people living with COPD and other lung conditions, with singing for lung health.", "health", None, 18, "TU", ("14:00", "15:30")),
    ("Living Well with Pain", ["long_term_condition", "mental_wellbeing"], ["Course", "Pain management"],
     "A six-week self-management course for people living with persistent pain, led by trained tutors with lived experience.", "college", None, 18, "WE", ("10:00", "12:30")),
    ("Stroke Club", ["long_term_condition", "loneliness_isolation"], ["Support group", "Stroke"],
     "A social club and peer support for stroke survivors and their carers.", "health", 2, 18, "FR", ("13:30", "15:30")),
    ("Carers' Café", ["carer_support", "loneliness_isolation"], ["Carers", "Drop-in"],
     "Time out for unpaid carers: a cuppa, a chat, information and a listening ear, with sitting arranged if needed.", "carers", None, 16, "MO", ("10:30", "12:30")),
    ("Carers' Advice Line", ["carer_support", "money_benefits_debt"], ["Carers", "Advice"],
     "Information and advice for unpaid carers: carer's assessments, Carer's Allowance, breaks and emergency planning.", "carers", None, 16, "TU", ("09:00", "17:00")),
    ("Respite Sitting Service", ["carer_support"], ["Carers", "Respite"],
     "Trained volunteers sit with the person you care for so you can take a few hours' break.", "carers", None, 18, "TH", ("09:00", "17:00")),
    ("Bereavement Support Group", ["bereavement", "mental_wellbeing"], ["Bereavement", "Support group"],
     "A gentle monthly group for people who have lost someone close, facilitated by trained volunteers.", "hospice", None, 18, "WE", ("14:00", "16:00")),
    ("Bereavement Listening Service", ["bereavement"], ["Bereavement", "One-to-one"],
     "Up to six one-to-one sessions with a trained bereavement volunteer, in person or by phone.", "hospice", None, 18, "FR", ("09:30", "16:30")),
    ("Alcohol Advice Drop-in", ["substance_use"], ["Alcohol", "Advice"],
     "Confidential advice for anyone worried about their own or someone else's drinking, with a route into treatment.", "recovery", None, 18, "TU", ("13:00", "16:00")),
    ("Recovery Café", ["substance_use", "loneliness_isolation"], ["Recovery", "Peer support"],
     "A drug and alcohol free café run by people in recovery, with peer mentoring and activities.", "recovery", None, 18, "SA", ("11:00", "15:00")),
    ("Stop Smoking Clinic", ["substance_use", "long_term_condition"], ["Smoking cessation", "Health"],
     "Free support and nicotine replacement to help you stop smoking, with weekly check-ins.", "health", None, 16, "MO", ("16:00", "19:00")),
    ("Community Transport", ["other", "loneliness_isolation"], ["Transport"],
     "Door-to-door minibus and volunteer car service for people who cannot use public transport, to appointments, shops and groups.", "transport", 4, None, "MO", ("08:00", "18:00")),
    ("Library Reading Group", ["other", "loneliness_isolation"], ["Reading", "Library"],
     "A monthly reading group choosing books together, with large print and audio copies available.", "library", None, None, "TH", ("18:00", "19:30")),
]

ORG_KINDS = {
    "mind": "{area} Mind and Wellbeing Trust", "college": "{area} Wellbeing College",
    "arts": "{town} Arts Collective", "shed": "{town} Men's Shed Association",
    "age": "Age Well {area}", "library": "{town} Library and Community Hub",
    "advice": "{area} Money and Rights Advice", "foodbank": "{town} Food Bank",
    "energy": "{area} Warm Homes Partnership", "council": "{area} Housing Options Team",
    "housing": "{area} Tenancy Support Trust", "work": "{area} Work and Skills Partnership",
    "cvs": "{area} Council for Voluntary Service", "leisure": "{town} Active Living",
    "green": "{area} Green Spaces Trust", "health": "{area} Health Support Groups Network",
    "carers": "{area} Carers Centre", "hospice": "{area} Hospice Community Services",
    "recovery": "{area} Recovery Partnership", "transport": "{area} Community Transport",
}

ACCESS = ["Step-free access", "Accessible toilet", "Hearing loop", "Parking nearby",
          "On a bus route", "Large print materials", "Quiet room available"]


def uid(*parts):
    return str(uuid.uuid5(NS, "/".join(parts)))


def slug(text):
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-").replace("--", "-")


def main():
    rng = random.Random(20261123)
    area = "Mendip"
    services = []
    for town, district, streets in TOWNS:
        for (name, needs, cats, desc, kind, cost, min_age, day, hours) in TEMPLATES:
            # Not every town has every service: 90% do, and half in villages.
            if rng.random() > (0.5 if town in VILLAGES else 0.9):
                continue
            org_name = ORG_KINDS[kind].format(area=area, town=town)
            full = f"{town} {name}"
            sid = uid("service", full)
            venue = f"{town} {rng.choice(VENUES)}"
            street = rng.choice(streets)
            postcode = f"{district} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
            status = "active"
            roll = rng.random()
            if roll < 0.03:
                status = "temporarily closed"
            elif roll < 0.05:
                status = "inactive"
            access = rng.sample(ACCESS, rng.randint(1, 3))
            attributes = []
            for need in needs:
                attributes.append({
                    "id": uid("attribute", full, need),
                    "link_type": "service",
                    "link_entity": "service",
                    "link_id": sid,
                    "taxonomy_term_id": uid("term", NEED_TAXONOMY, need),
                    "taxonomy_term": {
                        "id": uid("term", NEED_TAXONOMY, need),
                        "code": need,
                        "name": NEEDS[need],
                        "description": f"Casebook need domain: {NEEDS[need]}",
                        "taxonomy": NEED_TAXONOMY,
                    },
                })
            for cat in cats:
                attributes.append({
                    "id": uid("attribute", full, cat),
                    "link_type": "service",
                    "link_entity": "service",
                    "link_id": sid,
                    "taxonomy_term_id": uid("term", CATEGORY_TAXONOMY, cat),
                    "taxonomy_term": {
                        "id": uid("term", CATEGORY_TAXONOMY, cat),
                        "code": slug(cat),
                        "name": cat,
                        "description": cat,
                        "taxonomy": CATEGORY_TAXONOMY,
                    },
                })
            service = {
                "id": sid,
                "name": full,
                "description": desc,
                "url": f"https://directory.example.org/services/{slug(full)}",
                "email": f"{slug(name)}.{slug(town)}@example.org",
                "status": status,
                "last_modified": "2026-10-01T09:00:00.000Z",
                "organization": {
                    "id": uid("organization", org_name),
                    "name": org_name,
                    "description": f"{org_name} runs community services in {town} and across {area}.",
                    "website": f"https://{slug(org_name)}.example.org",
                },
                "service_areas": [
                    {"id": uid("area", full, town), "name": town, "extent_type": "text"},
                ],
                "service_at_locations": [{
                    "id": uid("sal", full),
                    "location": {
                        "id": uid("location", venue, street),
                        "location_type": "physical",
                        "name": venue,
                        "addresses": [{
                            "id": uid("address", venue, street),
                            "address_1": f"{rng.randint(1, 80)} {street}",
                            "city": town,
                            "state_province": "Somerset",
                            "postal_code": postcode,
                            "country": "GB",
                            "address_type": "physical",
                        }],
                        "accessibility": [
                            {"id": uid("access", full, a), "description": a} for a in access
                        ],
                    },
                }],
                "schedules": [{
                    "id": uid("schedule", full),
                    "freq": "WEEKLY",
                    "interval": 1,
                    "byday": day,
                    "opens_at": hours[0],
                    "closes_at": hours[1],
                    "description": f"Every week, {hours[0]} to {hours[1]}.",
                }],
                "attributes": attributes,
            }
            if rng.random() < 0.3:
                service["service_areas"].append(
                    {"id": uid("area", full, area), "name": area, "extent_type": "text"})
            if cost is not None:
                service["cost_options"] = [{
                    "id": uid("cost", full),
                    "option": "Per session",
                    "amount": cost,
                    "currency": "GBP",
                    "amount_description": f"£{cost} a session; free if it would stop you coming",
                }]
            if min_age is not None:
                service["minimum_age"] = min_age
            services.append(service)
    services.sort(key=lambda s: s["name"])
    page = {
        "total_items": len(services),
        "total_pages": 1,
        "page_number": 1,
        "size": len(services),
        "first_page": True,
        "last_page": True,
        "empty": not services,
        "contents": services,
    }
    print(json.dumps(page, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
